#include "core/philox.h"

#include <cmath>

#include "core/philox_core.h"

namespace pipetrain {

std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  philox::Block(c.data(), k[0], k[1]);
  return c;
}

PhiloxStream::PhiloxStream(const RngKey& key) {
  const philox::StreamWords w =
      philox::MakeStreamWords(key.seed, key.step, key.layer, key.microbatch, key.site);
  key_ = {w.key0, w.key1};
  c2_ = w.c2;
  c3_ = w.c3;
}

uint32_t PhiloxStream::Bits(uint64_t i) const {
  return philox::Bits(philox::StreamWords{key_[0], key_[1], c2_, c3_}, i);
}

float PhiloxStream::Uniform(uint64_t i) const {
  return philox::Uniform(philox::StreamWords{key_[0], key_[1], c2_, c3_}, i);
}
double PhiloxStream::Normal(uint64_t i) const {
  // Two uniforms from the lanes of elements 2i and 2i+1; u1 is kept away from 0.
  double u1 = (static_cast<double>(Bits(2 * i)) + 1.0) / 4294967297.0;
  double u2 = static_cast<double>(Bits(2 * i + 1)) / 4294967296.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace pipetrain
