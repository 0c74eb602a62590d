// SPDX-License-Identifier: Apache-2.0
// fuzz_load.cpp: nn::deserialize on any bytes: either squint::error, or a model whose forward
// runs and whose own bytes load back to the same bytes. Half the inputs get the magic, version
// and a correct checksum wrapped around them, so the fuzzer reaches the layer fields instead of
// stopping at the checksum.
#include "fuzz_support.hpp"
#include "squint/nn/serialize.hpp"

using namespace squint;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> file;
  if (size > 0 && data[0] % 2 == 1) {
    nn::detail::writer w;
    w.bytes(nn::detail::format_magic, sizeof nn::detail::format_magic);
    w.uint(nn::format_version);
    w.bytes(data + 1, size - 1);
    w.uint(nn::detail::fnv1a(w.out.data(), w.out.size()));
    file = std::move(w.out);
  } else {
    file.assign(data, data + size);
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
