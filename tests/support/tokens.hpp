// SPDX-License-Identifier: Apache-2.0
// tokens.hpp: reader for the whitespace-separated reference vector files in tests/data.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace squint_test {

/// Reads one record (line) at a time; floats are exact hex floats ("0x1.8p+1").
class tokens {
 public:
  explicit tokens(std::string line) : in_(std::move(line)) {}
  std::string word() {
    std::string w;
    if (!(in_ >> w)) throw std::runtime_error("vector file: unexpected end of record");
    return w;
  }
  bool try_word(std::string& w) { return static_cast<bool>(in_ >> w); }
  long long integer() { return std::stoll(word()); }
  std::size_t count() { return static_cast<std::size_t>(integer()); }
  float real() { return static_cast<float>(std::strtod(word().c_str(), nullptr)); }
  std::vector<float> reals(std::size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = real();
    return v;
  }
  template <class T = std::int32_t>
  std::vector<T> integers(std::size_t n) {
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(integer());
    return v;
  }
  std::vector<std::size_t> dims() {
    const std::size_t rank = count();
    std::vector<std::size_t> d(rank);
    for (auto& x : d) x = count();
    return d;
  }

 private:
  std::istringstream in_;
};

/// All non-comment lines of a file in tests/data.
inline std::vector<std::string> records(const std::string& file) {
  std::ifstream in(std::string(SQUINT_TEST_DATA_DIR) + "/" + file);
  if (!in) throw std::runtime_error("cannot open test data " + file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') out.push_back(line);
  return out;
}

}  // namespace squint_test
