// SPDX-License-Identifier: Apache-2.0
// fuzz_load.cpp: nn::deserialize and nn::deserialize_graph on any bytes: either squint::error,
// or a model whose own bytes load back to the same bytes and whose forward runs. The first byte
// chooses: bit 0, the rest gets the magic, version and a correct checksum wrapped around it, so
// the fuzzer reaches the layer fields instead of stopping at the checksum; bit 2, a graph (a raw
// graph file then starts at the second byte; a sequential file's first byte, 'S', has bit 2 clear).
#include "fuzz_support.hpp"
#include "squint/nn/serialize.hpp"

using namespace squint;

namespace {

/// a * b, or the largest size_t where that overflows.
std::size_t times(std::size_t a, std::size_t b) {
  return b != 0 && a > static_cast<std::size_t>(-1) / b ? static_cast<std::size_t>(-1) : a * b;
}

/// The multiply-adds or comparisons node i costs for its output shape o (windows and depths
/// are the file's to choose: a 1000 x 1000 pooling window over a padded 6 x 6 image is small in
/// memory and slow).
std::size_t node_work(const nn::graph& g, std::size_t i, const image_shape& o) {
  if (const auto* c = std::get_if<nn::conv2d>(&g.op(i)))
    return times(times(o.size(), c->filter().taps()), c->filter().group_channels);
  if (const auto* l = std::get_if<nn::linear>(&g.op(i))) return times(o.size(), l->in_features());
  if (const auto* p = std::get_if<nn::pool>(&g.op(i)))
    return times(times(o.size(), p->params.kernel_h), p->params.kernel_w);
  return o.size();
}

/// A graph's forward on one small image, when its shapes fit one and its work stays small.
void run_graph(const nn::graph& g) {
  if (g.size() == 0) return;
  std::size_t channels = 1;
  if (const auto* c = std::get_if<nn::conv2d>(&g.op(0))) channels = c->filter().group_channels * c->params().groups;
  if (const auto* l = std::get_if<nn::linear>(&g.op(0))) channels = l->in_features();
  const image_shape in{1, 6, 6, channels};
  std::vector<image_shape> shapes;
  if (squint_fuzz::rejected([&] { shapes = g.shapes(in); })) return;
  // Each term is checked before it is added, so neither sum can wrap.
  const std::size_t max_total = std::size_t{1} << 20, max_work = std::size_t{1} << 24;
  std::size_t total = in.size(), work = 0;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const std::size_t w = node_work(g, i, shapes[i]);
    if (shapes[i].size() > max_total || w > max_work) return;
    total += shapes[i].size();
    work += w;
    if (total > max_total || work > max_work) return;
  }
  const std::vector<float> x(in.size(), 0.5f);
  std::vector<float> y(shapes.back().size());
  g.forward(x.data(), in, y.data());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool graph = size > 0 && (data[0] & 4) != 0;
  std::vector<std::uint8_t> file;
  if (size > 0 && data[0] % 2 == 1) {
    nn::detail::writer w;
    if (graph) w.bytes(nn::detail::graph_magic, sizeof nn::detail::graph_magic);
    else w.bytes(nn::detail::format_magic, sizeof nn::detail::format_magic);
    w.uint(nn::format_version);
    w.bytes(data + 1, size - 1);
    w.uint(nn::detail::fnv1a(w.out.data(), w.out.size()));
    file = std::move(w.out);
  } else {
    file.assign(data + (graph ? 1 : 0), data + size);
  }
  if (graph) {
    nn::graph g;
    if (squint_fuzz::rejected([&] { g = nn::deserialize_graph(file); })) return 0;
    const std::vector<std::uint8_t> again = nn::serialize(g);
    SQUINT_FUZZ_CHECK(nn::serialize(nn::deserialize_graph(again)) == again);
    run_graph(g);
    return 0;
  }
  nn::sequential model;
  if (squint_fuzz::rejected([&] { model = nn::deserialize(file); })) return 0;
  const std::vector<std::uint8_t> again = nn::serialize(model);
  SQUINT_FUZZ_CHECK(nn::serialize(nn::deserialize(again)) == again);
  if (model.size() > 0 && model.in_features() * model.out_features() <= (std::size_t{1} << 20)) {
    const std::vector<float> x(2 * model.in_features(), 0.5f);
    std::vector<float> y(2 * model.out_features());
    model.forward(x.data(), 2, y.data());
  }
  return 0;
}
