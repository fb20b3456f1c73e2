// AdamW (Loshchilov & Hutter) on flat buffers: one call updates every
// parameter of a stage. Decay is decoupled: p ← p − lr·(m̂/(sqrt(v̂)+ε) + wd·p).
#ifndef PIPETRAIN_CORE_OPTIM_ADAMW_H_
#define PIPETRAIN_CORE_OPTIM_ADAMW_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace pipetrain {

struct AdamWHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.98;
  double epsilon = 1e-8;
  double weight_decay = 0.0;
};

// `step` is 1 for the first update (bias correction uses it). params, grads,
// m and v are flat and of equal size and dtype; m and v start at zero.
absl::Status AdamWStep(const AdamWHyper& hyper, int64_t step, Tensor& params, const Tensor& grads,
                       Tensor& m, Tensor& v);

// A dry run of AdamWStep with the same arguments: adds to `nonfinite` (f64
// [1] on the params' device, left there for the caller to read with others)
// the number of elements whose new parameter, m or v would not be finite,
// and writes nothing else. A trainer runs it before the update, so a step
// that would poison the weights or the moments is skipped, not applied.
absl::Status CountNonFiniteAdamWResults(const AdamWHyper& hyper, int64_t step, const Tensor& params,
                                        const Tensor& grads, const Tensor& m, const Tensor& v,
                                        Tensor& nonfinite);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_OPTIM_ADAMW_H_
