// Temperature sampling over translation directions: direction d, with n_d
// training pairs, is drawn with probability p_d ∝ n_d^(1/T). T = 1 samples
// in proportion to size; larger T flattens the distribution towards uniform
// so that small directions are seen often enough (T = 5 is the usual choice
// for many-to-many training).
//
// The sampler is a pure function of the uniform number it is given; the
// caller supplies Philox bits keyed by (seed, pool, draw), so any draw can
// be replayed without replaying the ones before it.
#ifndef PIPETRAIN_CORE_DATA_DIRECTION_SAMPLER_H_
#define PIPETRAIN_CORE_DATA_DIRECTION_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace pipetrain {

class DirectionSampler {
 public:
  // `pairs[d]`: training pairs of direction d (0 is allowed and never drawn).
  // Fails when `temperature` is not a positive finite number or no direction
  // has a pair.
  static absl::StatusOr<DirectionSampler> Create(absl::Span<const int64_t> pairs,
                                                 double temperature);

  int64_t size() const { return static_cast<int64_t>(probability_.size()); }
  double probability(int64_t d) const { return probability_[d]; }
  // The direction for a uniform `u` in [0, 1): inverse of the cumulative
  // distribution (binary search), so a direction with p = 0 is never chosen.
  int64_t Pick(double u) const;

 private:
  std::vector<double> probability_;
  std::vector<double> cumulative_;  // cumulative_[d] = p_0 + ... + p_d; ends at exactly 1
};

// A double uniform in [0, 1) with 53 random bits taken from two 32-bit words.
double UnitFromBits(uint32_t high, uint32_t low);
// An integer uniform in [0, n) from 64 random bits (multiply and keep the
// high word; the bias is below n / 2^64). n must be positive.
int64_t IndexFromBits(uint64_t bits, int64_t n);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_DIRECTION_SAMPLER_H_
