// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
//
// Every random draw in pipetrain is a pure function of a key and an element
// index, never of how many numbers were drawn before. Dropout masks are keyed
// by (seed, step, layer, micro-batch, site), so recomputation in backward and a
// resumed run replay exactly the same masks, on any rank, on CPU or GPU.
#ifndef PIPETRAIN_CORE_PHILOX_H_
#define PIPETRAIN_CORE_PHILOX_H_

#include <array>
#include <cstdint>

#include "core/philox_core.h"

namespace pipetrain {

// Identifies one random stream. `site` separates draws made in the same layer
// (e.g. attention probabilities vs. the FFN activation).
struct RngKey {
  uint64_t seed = 0;
  uint32_t step = 0;
  uint32_t layer = 0;
  uint32_t microbatch = 0;
  uint32_t site = 0;
};

// The words a kernel needs to draw from `key`'s stream (see philox_core.h).
inline philox::StreamWords StreamWordsOf(const RngKey& key) {
  return philox::MakeStreamWords(key.seed, key.step, key.layer, key.microbatch, key.site);
}

// One Philox4x32-10 block: 4 random 32-bit words for a 128-bit counter.
std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// Random numbers of one stream, addressed by element index.
class PhiloxStream {
 public:
  explicit PhiloxStream(const RngKey& key);
  // The 32 random bits of element `i`.
  uint32_t Bits(uint64_t i) const;
  // Uniform in [0, 1) with 24 bits of resolution (exact in float).
  float Uniform(uint64_t i) const;
  // Standard normal of element `i` (Box-Muller over two uniforms).
  double Normal(uint64_t i) const;

 private:
  std::array<uint32_t, 2> key_;
  uint32_t c2_;  // step
  uint32_t c3_;  // micro-batch and site, mixed
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_PHILOX_H_
