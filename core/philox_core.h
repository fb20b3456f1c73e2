// The arithmetic of Philox4x32-10 and of pipetrain's element addressing, as
// inline functions that compile for both the host and a CUDA device. The CPU
// (core/philox.cc) and the GPU kernels (dropout, attention dropout) call these
// same functions, so a dropout mask is bit for bit the same on either backend.
#ifndef PIPETRAIN_CORE_PHILOX_CORE_H_
#define PIPETRAIN_CORE_PHILOX_CORE_H_

#include <cstdint>

#if defined(__CUDACC__)
#define PT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PT_HOST_DEVICE inline
#endif

namespace pipetrain::philox {

// A stream's key and the two counter words that are fixed for the stream.
struct StreamWords {
  uint32_t key0, key1;
  uint32_t c2;  // step
  uint32_t c3;  // micro-batch and site, mixed
};

// One Philox4x32-10 block, in place on c[0..3].
PT_HOST_DEVICE void Block(uint32_t c[4], uint32_t k0, uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    const uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
}

// The stream words of an RngKey's fields. The layer goes into the key so that
// streams of different layers differ in every round; micro-batch and site
// share a word (micro-batches < 2^20, sites < 2^12).
PT_HOST_DEVICE StreamWords MakeStreamWords(uint64_t seed, uint32_t step, uint32_t layer,
                                           uint32_t microbatch, uint32_t site) {
  return StreamWords{static_cast<uint32_t>(seed) ^ (layer * 0x85EBCA6Bu),
                     static_cast<uint32_t>(seed >> 32) ^ layer, step, (microbatch << 12) ^ site};
}

// The 32 random bits of element i: block i/4, lane i%4. The block index fills
// the first two counter words, so a stream holds 2^66 elements.
PT_HOST_DEVICE uint32_t Bits(const StreamWords& s, uint64_t i) {
  uint32_t c[4] = {static_cast<uint32_t>(i >> 2), static_cast<uint32_t>(i >> 34), s.c2, s.c3};
  Block(c, s.key0, s.key1);
  return c[i & 3];
}

// Uniform in [0, 1) with 24 bits of resolution (exact in float).
PT_HOST_DEVICE float Uniform(const StreamWords& s, uint64_t i) {
  return static_cast<float>(Bits(s, i) >> 8) * (1.0f / 16777216.0f);
}

// Whether dropout with probability p drops element i. The comparison is made
// in double so that every backend agrees on the boundary: Uniform is a
// multiple of 2^-24, p is not rounded to float.
PT_HOST_DEVICE bool Dropped(const StreamWords& s, uint64_t i, double p) {
  return static_cast<double>(Uniform(s, i)) < p;
}

}  // namespace pipetrain::philox

#endif  // PIPETRAIN_CORE_PHILOX_CORE_H_
