// Inverted dropout: each element is kept with probability 1 − p and kept
// elements are scaled by 1/(1 − p). Element i is dropped when the Philox
// stream of `rng` gives Uniform(i) < p, so the mask is never stored: backward
// (and recomputation) regenerate it from the key.
#ifndef PIPETRAIN_CORE_OPS_DROPOUT_H_
#define PIPETRAIN_CORE_OPS_DROPOUT_H_

#include "absl/status/statusor.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace pipetrain::ops {

// p must be in [0, 1); p == 0 returns x unchanged (the same storage).
absl::StatusOr<Tensor> DropoutForward(const Tensor& x, double p, const RngKey& rng);
// dx = mask · dy / (1 − p); p == 0 returns dy itself.
absl::StatusOr<Tensor> DropoutBackward(const Tensor& dy, double p, const RngKey& rng);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_DROPOUT_H_
