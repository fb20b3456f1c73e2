#include "core/philox.h"

#include <cmath>

namespace pipetrain {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

inline void MulHiLo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

}  // namespace

std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    MulHiLo(kMul0, c[0], &hi0, &lo0);
    MulHiLo(kMul1, c[2], &hi1, &lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kWeyl0;
    k[1] += kWeyl1;
  }
  return c;
}

PhiloxStream::PhiloxStream(const RngKey& key) {
  // The layer goes into the key so that streams of different layers differ in
  // every round; micro-batch and site share a word (micro-batches < 2^20, sites < 2^12).
  key_ = {static_cast<uint32_t>(key.seed) ^ (key.layer * 0x85EBCA6Bu),
          static_cast<uint32_t>(key.seed >> 32) ^ key.layer};
  c2_ = key.step;
  c3_ = (key.microbatch << 12) ^ key.site;
}

uint32_t PhiloxStream::Bits(uint64_t i) const {
  // Element i lives in block i/4, lane i%4. The block index fills the first two
  // counter words, so a stream holds 2^66 elements.
  std::array<uint32_t, 4> out =
      Philox4x32({static_cast<uint32_t>(i >> 2), static_cast<uint32_t>(i >> 34), c2_, c3_}, key_);
  return out[i & 3];
}

float PhiloxStream::Uniform(uint64_t i) const {
  return static_cast<float>(Bits(i) >> 8) * (1.0f / 16777216.0f);
}

double PhiloxStream::Normal(uint64_t i) const {
  // Two uniforms from the lanes of elements 2i and 2i+1; u1 is kept away from 0.
  double u1 = (static_cast<double>(Bits(2 * i)) + 1.0) / 4294967297.0;
  double u2 = static_cast<double>(Bits(2 * i + 1)) / 4294967296.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace pipetrain
