// Global gradient-norm clipping. The norm is a sum of squares accumulated in
// double in a fixed order, so it is the same on every run; across pipeline
// stages each stage contributes its SumOfSquares and the sums are added in
// stage order.
#ifndef PIPETRAIN_CORE_OPTIM_GRAD_CLIP_H_
#define PIPETRAIN_CORE_OPTIM_GRAD_CLIP_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain {

double SumOfSquares(const Tensor& t);

// The sums of squares of consecutive parts of a flat buffer (each part's
// sum bitwise what SumOfSquares of it gives on the same device), computed
// on the buffer's device and read by the host once: a deep stage's norm
// costs one wait for the device, not one per parameter.
struct FlatSegment {
  int64_t offset = 0;  // elements into `flat`
  int64_t length = 0;
};
absl::StatusOr<std::vector<double>> SegmentSumsOfSquares(const Tensor& flat,
                                                         const std::vector<FlatSegment>& segments);
// The same sums left where they are computed: f64 [segments] on flat's
// device (on the host for a CPU buffer), for a caller that gathers several
// before one read.
absl::StatusOr<Tensor> SegmentSumsOfSquaresOnDevice(const Tensor& flat,
                                                    const std::vector<FlatSegment>& segments);

// Scales `grads` by min(1, max_norm / norm) where norm = sqrt(sum_of_squares).
// max_norm <= 0 disables clipping. Returns the norm before clipping. A
// non-finite norm is an InvalidArgument error and leaves `grads` untouched,
// so the caller can skip the step instead of applying zeroed or NaN grads.
absl::StatusOr<double> ClipToNorm(Tensor& grads, double sum_of_squares, double max_norm);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_OPTIM_GRAD_CLIP_H_
