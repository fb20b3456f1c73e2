// The CUDA implementations behind grad_clip.h (t and grads f32 or bf16 on the GPU).
#ifndef PIPETRAIN_CORE_OPTIM_GRAD_CLIP_CUDA_H_
#define PIPETRAIN_CORE_OPTIM_GRAD_CLIP_CUDA_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::cuda {

// Σ t_i² in double, in a fixed order (the same bits on every run).
absl::StatusOr<double> SumOfSquares(const Tensor& t);

// Element i of the f64 device tensor `out`: the sum of squares of
// flat[segments[i].offset, +length), each reduced exactly as SumOfSquares
// does, all queued on the compute stream without waiting for the host.
struct SquaresSegment {
  int64_t offset;
  int64_t length;
};
absl::Status SegmentSumsOfSquares(const Tensor& flat, const std::vector<SquaresSegment>& segments,
                                  Tensor& out);

// t ← t · factor, element by element (the product taken in double).
absl::Status ScaleInPlace(Tensor& t, double factor);

}  // namespace pipetrain::cuda

#endif  // PIPETRAIN_CORE_OPTIM_GRAD_CLIP_CUDA_H_
