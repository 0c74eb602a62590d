// SPDX-License-Identifier: Apache-2.0
// onnx_conformance_test.cpp: ONNX's own backend test cases (Debian libonnx-testdata) for
// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
// ConvInteger and QLinearConv, run bit-exact through squint's API, plus tie cases ONNX's set
// lacks.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "squint/dispatch.hpp"
#include "squint/quantize.hpp"
#include "squint/reference/gemm.hpp"
#include "support/onnx_proto.hpp"

namespace onnx_conformance_test {

namespace {

namespace fs = std::filesystem;
namespace onnx = squint_test::onnx;
using squint::matrix_view;

class OnnxConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(SQUINT_ONNX_NODE_DIR)) {
      if (std::getenv("SQUINT_REQUIRE_ONNX_TESTDATA"))
        FAIL() << "ONNX test data missing at " << SQUINT_ONNX_NODE_DIR;
      GTEST_SKIP() << "ONNX test data not installed (apt-get install libonnx-testdata)";
    }
  }
  static std::string dir(const std::string& name) { return std::string(SQUINT_ONNX_NODE_DIR) + "/" + name; }
  static onnx::tensor input(const std::string& name, int i) {
    return onnx::load_tensor(dir(name) + "/test_data_set_0/input_" + std::to_string(i) + ".pb");
  }
  static onnx::tensor output(const std::string& name, int i) {
    return onnx::load_tensor(dir(name) + "/test_data_set_0/output_" + std::to_string(i) + ".pb");
  }
  static squint::shape shape_of(const onnx::tensor& t) { return squint::shape(t.dims.begin(), t.dims.end()); }
  static int axis_of(const std::string& name) {
    const auto attributes = onnx::first_node_int_attributes(dir(name) + "/model.onnx");
    const auto it = attributes.find("axis");
    return it == attributes.end() ? 1 : static_cast<int>(it->second.at(0));  // ONNX's default axis
  }
};

TEST_F(OnnxConformanceTest, QuantizeLinear) {
  for (const std::string name : {"test_quantizelinear", "test_quantizelinear_axis"}) {
    const auto x = input(name, 0), scale = input(name, 1), zp = input(name, 2), y = output(name, 0);
    ASSERT_EQ(zp.type, onnx::uint8);
    const auto xs = x.values<float>();
    const auto scales = scale.values<float>();
    const auto zps = zp.values<std::uint8_t>();
    std::vector<std::uint8_t> q(xs.size());
    if (scale.numel() == 1) {
      squint::quantize<std::uint8_t>({xs.data(), shape_of(x)}, {q.data(), shape_of(x)}, {scales[0], zps[0]});
    } else {
      squint::per_channel_qparams p{scales, std::vector<std::int32_t>(zps.begin(), zps.end()), axis_of(name)};
      squint::quantize<std::uint8_t>({xs.data(), shape_of(x)}, {q.data(), shape_of(x)}, p);
    }
    EXPECT_EQ(q, y.values<std::uint8_t>()) << name;
  }
}

TEST_F(OnnxConformanceTest, DequantizeLinear) {
  for (const std::string name : {"test_dequantizelinear", "test_dequantizelinear_axis"}) {
    const auto x = input(name, 0), scale = input(name, 1), zp = input(name, 2), y = output(name, 0);
    const auto qs = x.values<std::uint8_t>();
    const auto scales = scale.values<float>();
    const auto zps = zp.values<std::uint8_t>();
    std::vector<float> out(qs.size());
    if (scale.numel() == 1) {
      squint::dequantize<std::uint8_t>({qs.data(), shape_of(x)}, {out.data(), shape_of(x)}, {scales[0], zps[0]});
    } else {
      squint::per_channel_qparams p{scales, std::vector<std::int32_t>(zps.begin(), zps.end()), axis_of(name)};
      squint::dequantize<std::uint8_t>({qs.data(), shape_of(x)}, {out.data(), shape_of(x)}, p);
    }
    EXPECT_EQ(out, y.values<float>()) << name;
  }
}

TEST_F(OnnxConformanceTest, DynamicQuantizeLinear) {
  for (const std::string name : {"test_dynamicquantizelinear", "test_dynamicquantizelinear_max_adjusted",
                                 "test_dynamicquantizelinear_min_adjusted"}) {
    const auto x = input(name, 0);
    const auto xs = x.values<float>();
    std::vector<std::uint8_t> q(xs.size());
    const auto p = squint::dynamic_quantize({xs.data(), shape_of(x)}, {q.data(), shape_of(x)});
    EXPECT_EQ(q, output(name, 0).values<std::uint8_t>()) << name;
    EXPECT_EQ(p.scale, output(name, 1).values<float>()[0]) << name;
    EXPECT_EQ(p.zero_point, output(name, 2).values<std::uint8_t>()[0]) << name;
  }
}

/// ONNX's B (k x n, uint8) packed for squint's GEMM, which takes one row per output channel.
squint::packed_weights pack_onnx_b(const std::uint8_t* b, std::size_t k, std::size_t n, float scale,
                                   std::int32_t zero_point) {
  std::vector<std::uint8_t> rows(n * k);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < n; ++j) rows[j * k + i] = b[i * n + j];
  return squint::packed_weights::from_uint8(rows.data(), n, k, k, {scale}, {zero_point});
}

/// fn() once per ISA compiled in and supported here (runtime dispatch), then back to automatic.
template <class F>
void on_every_isa(F fn) {
  for (const std::string& isa : squint::runtime::compiled_isas()) {
    try {
      squint::runtime::force_isa(isa.c_str());
    } catch (const squint::error&) {
      continue;
    }
    fn(isa);
  }
  squint::runtime::force_isa(nullptr);
}

TEST_F(OnnxConformanceTest, MatMulInteger) {
  const std::string name = "test_matmulinteger";
  const auto a = input(name, 0), b = input(name, 1), azp = input(name, 2), bzp = input(name, 3);
  const auto y = output(name, 0);
  const auto m = static_cast<std::size_t>(a.dims[0]), k = static_cast<std::size_t>(a.dims[1]);
  const auto n = static_cast<std::size_t>(b.dims[1]);
  const auto av = a.values<std::uint8_t>(), bv = b.values<std::uint8_t>();
  const std::vector<std::int32_t> b_zero(1, bzp.values<std::uint8_t>()[0]);
  std::vector<std::int64_t> c(m * n);
  squint::reference::gemm(matrix_view<const std::uint8_t>::row_major(av.data(), m, k), azp.values<std::uint8_t>()[0],
                          matrix_view<const std::uint8_t>::row_major(bv.data(), k, n).transposed(), b_zero.data(), 1,
                          matrix_view<std::int64_t>::row_major(c.data(), m, n));
  const auto expect = y.values<std::int32_t>();
  ASSERT_EQ(c.size(), expect.size());
  for (std::size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i], expect[i]) << i;
  // The GEMM itself, uint8 weights included, on every kernel.
  const auto packed = pack_onnx_b(bv.data(), k, n, 1.0f, b_zero[0]);
  on_every_isa([&](const std::string& isa) {
    std::vector<std::int32_t> got(m * n);
    squint::runtime::gemm(av.data(), m, k, azp.values<std::uint8_t>()[0], packed, got.data(), n);
    EXPECT_EQ(got, expect) << isa;
  });
}

TEST_F(OnnxConformanceTest, QLinearMatMul) {
  for (const std::string name : {"test_qlinearmatmul_2D", "test_qlinearmatmul_3D"}) {
    const auto a = input(name, 0), b = input(name, 3);
    const float a_scale = input(name, 1).values<float>()[0], b_scale = input(name, 4).values<float>()[0];
    const float y_scale = input(name, 6).values<float>()[0];
    const std::int32_t a_zp = input(name, 2).values<std::uint8_t>()[0];
    const std::vector<std::int32_t> b_zp(1, input(name, 5).values<std::uint8_t>()[0]);
    const std::int32_t y_zp = input(name, 7).values<std::uint8_t>()[0];
    const std::size_t rank = a.dims.size();
    const auto m = static_cast<std::size_t>(a.dims[rank - 2]), k = static_cast<std::size_t>(a.dims[rank - 1]);
    const auto n = static_cast<std::size_t>(b.dims[rank - 1]);
    const std::size_t batches = a.numel() / (m * k);
    const auto av = a.values<std::uint8_t>(), bv = b.values<std::uint8_t>();
    std::vector<std::int32_t> acc(batches * m * n);
    for (std::size_t batch = 0; batch < batches; ++batch) {
      std::vector<std::int64_t> c(m * n);
      squint::reference::gemm(matrix_view<const std::uint8_t>::row_major(av.data() + batch * m * k, m, k), a_zp,
                              matrix_view<const std::uint8_t>::row_major(bv.data() + batch * k * n, k, n).transposed(),
                              b_zp.data(), 1, matrix_view<std::int64_t>::row_major(c.data(), m, n));
      for (std::size_t i = 0; i < m * n; ++i) acc[batch * m * n + i] = static_cast<std::int32_t>(c[i]);
    }
    // ONNX Runtime's real multiplier, in float32.
    const float multiplier = a_scale * b_scale / y_scale;
    std::vector<std::uint8_t> q(acc.size());
    squint::requantize<std::uint8_t>({acc.data(), acc.size()}, {q.data(), q.size()}, {multiplier}, y_zp);
    const auto expect = output(name, 0).values<std::uint8_t>();
    EXPECT_EQ(q, expect) << name;
    // The GEMM's requantized output stage (uint8 weights), batch by batch, on every kernel.
    on_every_isa([&](const std::string& isa) {
      std::vector<std::uint8_t> got(batches * m * n);
      for (std::size_t batch = 0; batch < batches; ++batch) {
        const auto packed = pack_onnx_b(bv.data() + batch * k * n, k, n, b_scale, b_zp[0]);
        squint::runtime::gemm<std::uint8_t, std::uint8_t>(av.data() + batch * m * k, m, k, {a_scale, a_zp}, packed,
                                                          nullptr, {y_scale, y_zp}, false, got.data() + batch * m * n, n);
      }
      EXPECT_EQ(got, expect) << name << " on " << isa;
    });
  }
}

/// An ONNX Conv-family node's geometry from its attributes (NCHW x of shape `x_dims`, OIHW w).
struct onnx_conv {
  squint::image_shape in;
  squint::filter_shape filter;
  squint::conv2d_params params;
};

onnx_conv conv_of(const std::map<std::string, std::vector<std::int64_t>>& attributes,
                  const std::vector<std::int64_t>& x_dims, const std::vector<std::int64_t>& w_dims) {
  auto get = [&](const char* key, std::vector<std::int64_t> fallback) {
    const auto it = attributes.find(key);
    return it == attributes.end() ? fallback : it->second;
  };
  onnx_conv c;
  c.in = {static_cast<std::size_t>(x_dims[0]), static_cast<std::size_t>(x_dims[2]),
          static_cast<std::size_t>(x_dims[3]), static_cast<std::size_t>(x_dims[1])};
  c.filter = {static_cast<std::size_t>(w_dims[0]), static_cast<std::size_t>(w_dims[1]),
              static_cast<std::size_t>(w_dims[2]), static_cast<std::size_t>(w_dims[3])};
  const auto strides = get("strides", {1, 1}), dilations = get("dilations", {1, 1}), pads = get("pads", {0, 0, 0, 0});
  c.params.stride_h = static_cast<std::size_t>(strides[0]);
  c.params.stride_w = static_cast<std::size_t>(strides[1]);
  c.params.dilation_h = static_cast<std::size_t>(dilations[0]);
  c.params.dilation_w = static_cast<std::size_t>(dilations[1]);
  c.params.pad_top = static_cast<std::size_t>(pads[0]);
  c.params.pad_left = static_cast<std::size_t>(pads[1]);
  c.params.pad_bottom = static_cast<std::size_t>(pads[2]);
  c.params.pad_right = static_cast<std::size_t>(pads[3]);
  c.params.groups = static_cast<std::size_t>(get("group", {1})[0]);
  return c;
}

/// NCHW -> NHWC (to_nhwc), or NHWC -> NCHW.
template <class T>
std::vector<T> transpose_channels(const std::vector<T>& x, const squint::image_shape& s, bool to_nhwc) {
  std::vector<T> out(x.size());
  for (std::size_t n = 0; n < s.batch; ++n)
    for (std::size_t c = 0; c < s.channels; ++c)
      for (std::size_t i = 0; i < s.height * s.width; ++i) {
        const std::size_t nchw = (n * s.channels + c) * s.height * s.width + i;
        const std::size_t nhwc = (n * s.height * s.width + i) * s.channels + c;
        if (to_nhwc) out[nhwc] = x[nchw];
        else out[nchw] = x[nhwc];
      }
  return out;
}

TEST_F(OnnxConformanceTest, ConvInteger) {
  for (const std::string name : {"test_basic_convinteger", "test_convinteger_with_padding",
                                 "test_convinteger_without_padding"}) {
    const auto x = input(name, 0), w = input(name, 1);
    const onnx_conv c = conv_of(onnx::first_node_int_attributes(dir(name) + "/model.onnx"), x.dims, w.dims);
    const std::int32_t x_zp = fs::exists(dir(name) + "/test_data_set_0/input_2.pb") ? input(name, 2).values<std::uint8_t>()[0] : 0;
    const std::vector<std::int32_t> w_zp{
        fs::exists(dir(name) + "/test_data_set_0/input_3.pb") ? input(name, 3).values<std::uint8_t>()[0] : 0};
    const auto packed = squint::packed_conv::from_uint8(w.values<std::uint8_t>().data(), c.filter,
                                                        squint::filter_layout::oihw, c.params, {1.0f}, w_zp);
    const auto xs = transpose_channels(x.values<std::uint8_t>(), c.in, true);
    const squint::conv2d_geometry g = packed.geometry(c.in);
    const auto expect = output(name, 0).values<std::int32_t>();
    ASSERT_EQ(g.out.size(), expect.size()) << name;
    on_every_isa([&](const std::string& isa) {
      std::vector<std::int32_t> y(g.out.size());
      squint::runtime::conv2d(xs.data(), c.in, x_zp, packed, y.data());
      EXPECT_EQ(transpose_channels(y, g.out, false), expect) << name << " on " << isa;
    });
  }
}

TEST_F(OnnxConformanceTest, QLinearConv) {
  const std::string name = "test_qlinearconv";
  const auto x = input(name, 0), w = input(name, 3);
  const onnx_conv c = conv_of(onnx::first_node_int_attributes(dir(name) + "/model.onnx"), x.dims, w.dims);
  const squint::qparams xp{input(name, 1).values<float>()[0], input(name, 2).values<std::uint8_t>()[0]};
  const squint::qparams yp{input(name, 6).values<float>()[0], input(name, 7).values<std::uint8_t>()[0]};
  const auto w_scale = input(name, 4).values<float>();
  const auto w_zp8 = input(name, 5).values<std::uint8_t>();
  const std::vector<std::int32_t> w_zp(w_zp8.begin(), w_zp8.end());
  const std::vector<std::int32_t> bias =
      fs::exists(dir(name) + "/test_data_set_0/input_8.pb") ? input(name, 8).values<std::int32_t>() : std::vector<std::int32_t>{};
  const auto packed = squint::packed_conv::from_uint8(w.values<std::uint8_t>().data(), c.filter,
                                                      squint::filter_layout::oihw, c.params, w_scale, w_zp);
  const auto xs = transpose_channels(x.values<std::uint8_t>(), c.in, true);
  const squint::conv2d_geometry g = packed.geometry(c.in);
  const auto expect = output(name, 0).values<std::uint8_t>();
  ASSERT_EQ(g.out.size(), expect.size());
  on_every_isa([&](const std::string& isa) {
    std::vector<std::uint8_t> y(g.out.size());
    squint::runtime::conv2d(xs.data(), c.in, xp, packed, bias.empty() ? nullptr : bias.data(), yp,
                            squint::activation::none, y.data());
    EXPECT_EQ(transpose_channels(y, g.out, false), expect) << name << " on " << isa;
  });
}

// ONNX's cases contain no rounding ties; these pin round-half-to-even through the same API.
TEST(OnnxTieTest, QuantizeLinearTiesRoundToEven) {
  const std::vector<float> x{1.0f, 3.0f, 5.0f, 7.0f, -1.0f, -3.0f, -5.0f, 509.0f};
  std::vector<std::uint8_t> q(x.size());
  squint::quantize<std::uint8_t>({x.data(), x.size()}, {q.data(), q.size()}, {2.0f, 128});
  // x / 2 = 0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 254.5
  EXPECT_EQ(q, (std::vector<std::uint8_t>{128, 130, 130, 132, 128, 126, 126, 255}));
  const std::vector<float> s{2.5f, -2.5f, 126.5f, -127.5f};
  std::vector<std::int8_t> r(s.size());
  squint::quantize<std::int8_t>({s.data(), s.size()}, {r.data(), r.size()}, {1.0f, 0});
  EXPECT_EQ(r, (std::vector<std::int8_t>{2, -2, 126, -128}));
}

TEST(OnnxTieTest, DynamicQuantizeLinearTies) {
  // Range [-2.5, 252.5]: scale 1 and zero point round(2.5) = 2; values tie on x.5.
  const std::vector<float> x{-2.5f, 252.5f, 0.5f, 1.5f, 2.5f, -1.5f};
  std::vector<std::uint8_t> q(x.size());
  const auto p = squint::dynamic_quantize({x.data(), x.size()}, {q.data(), q.size()});
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero_point, 2);
  EXPECT_EQ(q, (std::vector<std::uint8_t>{0, 254, 2, 4, 4, 0}));
}

}  // namespace

}  // namespace onnx_conformance_test
