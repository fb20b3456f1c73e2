#include "core/data/direction_sampler.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pipetrain {

absl::StatusOr<DirectionSampler> DirectionSampler::Create(absl::Span<const int64_t> pairs,
                                                          double temperature) {
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling temperature ", temperature,
                     " must be a positive number (1: by corpus size; 5: the usual flattening)"));
  }
  DirectionSampler sampler;
  sampler.probability_.resize(pairs.size());
  double total = 0;
  for (size_t d = 0; d < pairs.size(); ++d) {
    if (pairs[d] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("direction ", d, " has a negative pair count ", pairs[d]));
    }
    // n^(1/T) through the logarithm: exact enough, and no overflow for any T.
    const double weight =
        pairs[d] > 0 ? std::exp(std::log(static_cast<double>(pairs[d])) / temperature) : 0.0;
    sampler.probability_[d] = weight;
    total += weight;
  }
  if (!(total > 0)) {
    return absl::InvalidArgumentError("no direction has a training pair to sample");
  }
  sampler.cumulative_.resize(pairs.size());
  double running = 0;
  for (size_t d = 0; d < pairs.size(); ++d) {
    sampler.probability_[d] /= total;
    running += sampler.probability_[d];
    sampler.cumulative_[d] = running;
  }
  // Rounding may leave the sum a hair below 1; from the last direction that
  // can be drawn onwards the cumulative value is exactly 1, so every u < 1
  // lands on a direction with p > 0.
  size_t last = pairs.size();
  while (last > 0 && sampler.probability_[last - 1] == 0) --last;
  for (size_t d = last - 1; d < pairs.size(); ++d) sampler.cumulative_[d] = 1.0;
  return sampler;
}

int64_t DirectionSampler::Pick(double u) const {
  const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
  return std::min<int64_t>(it - cumulative_.begin(), size() - 1);
}

double UnitFromBits(uint32_t high, uint32_t low) {
  const uint64_t bits = (uint64_t{high} << 21) ^ (low >> 11);  // 53 bits
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

int64_t IndexFromBits(uint64_t bits, int64_t n) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(bits) * static_cast<uint64_t>(n)) >>
                              64);
}

}  // namespace pipetrain
