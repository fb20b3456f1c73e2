#include "core/optim/grad_clip.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#if PIPETRAIN_WITH_CUDA
#include "core/optim/grad_clip_cuda.h"
#endif
#include "core/device.h"
#include "core/device_storage.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

// Below this a parallel region costs more than the scaling it splits.
constexpr int64_t kMinParallelElements = int64_t{1} << 15;

template <typename T>
double SumSquares(const T* x, int64_t n) {
  // One serial pass in index order: the same bits on every run and thread count.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double value = x[i];
    sum += value * value;
  }
  return sum;
}

template <typename T>
void Scale(T* x, int64_t n, double factor) {
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<T>(x[i] * factor);
}

}  // namespace

double SumOfSquares(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return 0.0;
#if PIPETRAIN_WITH_CUDA
  if (t.device() == Device::kCuda && (t.dtype() == DType::kF32 || t.dtype() == DType::kBF16)) {
    absl::StatusOr<double> sum = cuda::SumOfSquares(t);
    if (!sum.ok()) {
      // The signature has no room for an error, and a lost norm would silently
      // disable clipping: a failing device is fatal here.
      std::fprintf(stderr, "pipetrain: SumOfSquares of %s failed: %s\n", t.DebugString().c_str(),
                   std::string(sum.status().message()).c_str());
      std::abort();
    }
    return *sum;
  }
#endif
  if (t.device() == Device::kCuda) {
    std::fprintf(stderr, "pipetrain: SumOfSquares of %s on the CPU path\n",
                 t.DebugString().c_str());
    std::abort();
  }
  // The emulated device reduces with the CPU loop; its result reaches the
  // host as the GPU's would, through a copy.
  if (t.device() == Device::kEmulated) device_storage::CountDeviceToHost(sizeof(double));
  const EmulatedKernelScope kernel(t.device());
  switch (t.dtype()) {
    case DType::kF32:
      return SumSquares(t.data<float>(), t.numel());
    case DType::kF64:
      return SumSquares(t.data<double>(), t.numel());
    default:
      // Gradients are f32 or f64 by construction; anything else is a bug in the caller.
      std::fprintf(stderr, "pipetrain: SumOfSquares of %s\n", t.DebugString().c_str());
      std::abort();
  }
}

absl::StatusOr<Tensor> SegmentSumsOfSquaresOnDevice(const Tensor& flat,
                                                    const std::vector<FlatSegment>& segments) {
  PT_CHECK_ARG(flat.defined(), "SegmentSumsOfSquares: the buffer is not set");
  for (const FlatSegment& s : segments) {
    PT_CHECK_ARG(s.offset >= 0 && s.length >= 0 && s.offset + s.length <= flat.numel(),
                 "SegmentSumsOfSquares: segment [", s.offset, ", +", s.length, ") is outside ",
                 flat.DebugString());
  }
  const int64_t count = static_cast<int64_t>(segments.size());
  Tensor sums = Tensor::Empty({count}, DType::kF64, flat.device());
#if PIPETRAIN_WITH_CUDA
  if (flat.device() == Device::kCuda) {
    PT_CHECK_ARG(flat.dtype() == DType::kF32 || flat.dtype() == DType::kBF16,
                 "SegmentSumsOfSquares: ", flat.DebugString(), "; expected cuda f32 or bf16");
    std::vector<cuda::SquaresSegment> parts;
    for (const FlatSegment& s : segments) parts.push_back({s.offset, s.length});
    PT_RETURN_IF_ERROR(cuda::SegmentSumsOfSquares(flat, parts, sums));
    return sums;
  }
#endif
  PT_CHECK_ARG(flat.device() != Device::kCuda, "SegmentSumsOfSquares: ", flat.DebugString(),
               " needs the CUDA backend, which this build lacks");
  PT_CHECK_ARG(flat.dtype() == DType::kF32 || flat.dtype() == DType::kF64,
               "SegmentSumsOfSquares: ", flat.DebugString(), "; expected f32 or f64");
  // The CPU loop of SumOfSquares, on the host or as the emulated device's kernel.
  const EmulatedKernelScope kernel(flat.device());
  for (int64_t i = 0; i < count; ++i) {
    const FlatSegment& s = segments[i];
    double sum = 0.0;
    if (s.length > 0) {
      const Tensor part = flat.View(s.offset, {s.length});
      sum = flat.dtype() == DType::kF32 ? SumSquares(part.data<float>(), s.length)
                                        : SumSquares(part.data<double>(), s.length);
    }
    sums.data<double>()[i] = sum;
  }
  return sums;
}

absl::StatusOr<std::vector<double>> SegmentSumsOfSquares(const Tensor& flat,
                                                         const std::vector<FlatSegment>& segments) {
  PT_ASSIGN_OR_RETURN(const Tensor sums, SegmentSumsOfSquaresOnDevice(flat, segments));
  PT_ASSIGN_OR_RETURN(const Tensor host, CopyToDevice(sums, Device::kCpu));
  return std::vector<double>(host.data<double>(), host.data<double>() + host.numel());
}

absl::StatusOr<double> ClipToNorm(Tensor& grads, double sum_of_squares, double max_norm) {
  const bool on_gpu = grads.defined() && grads.device() == Device::kCuda;
  PT_CHECK_ARG(grads.defined() &&
                   (on_gpu ? (grads.dtype() == DType::kF32 || grads.dtype() == DType::kBF16)
                           : (grads.device() != Device::kCuda &&
                              (grads.dtype() == DType::kF32 || grads.dtype() == DType::kF64))),
               "ClipToNorm: grads are ", grads.defined() ? grads.DebugString() : "unset",
               on_gpu ? "; expected cuda f32 or bf16" : "; expected f32 or f64");
  PT_CHECK_ARG(!std::isnan(max_norm), "ClipToNorm: max_norm is NaN");
  PT_CHECK_ARG(!(sum_of_squares < 0.0), "ClipToNorm: sum_of_squares = ", sum_of_squares,
               " is negative");
  const double norm = std::sqrt(sum_of_squares);
  // Scaling by max_norm / inf would zero the gradients and hide the blow-up;
  // refuse instead, leaving the gradients as they are, so the caller can skip the step.
  if (!std::isfinite(norm)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ClipToNorm: the gradient norm is not finite (sum of squares = ", sum_of_squares,
        "); the gradients were left unscaled"));
  }
  if (max_norm <= 0.0 || norm <= max_norm) return norm;
  const double factor = max_norm / norm;
#if PIPETRAIN_WITH_CUDA
  if (on_gpu) {
    PT_RETURN_IF_ERROR(cuda::ScaleInPlace(grads, factor));
    return norm;
  }
#endif
  const EmulatedKernelScope kernel(grads.device());
  if (grads.dtype() == DType::kF32) {
    Scale(grads.data<float>(), grads.numel(), factor);
  } else {
    Scale(grads.data<double>(), grads.numel(), factor);
  }
  return norm;
}

}  // namespace pipetrain
