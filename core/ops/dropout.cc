#include "core/ops/dropout.h"

#include <string>

#include "absl/strings/str_cat.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/dropout_cuda.h"
#endif
#include "core/status_macros.h"

namespace pipetrain::ops {
namespace cpu {
// Defined in dropout_cpu.cc: out[i] = Uniform(i) < p ? 0 : in[i] / (1 − p).
template <typename T>
void DropoutApply(const T* in, T* out, int64_t n, double p, const RngKey& rng);
}  // namespace cpu

namespace {

absl::StatusOr<Tensor> ApplyMask(const Tensor& in, double p, const RngKey& rng, const char* op,
                                 const char* arg) {
  // Written so that NaN fails too.
  PT_CHECK_ARG(p >= 0.0 && p < 1.0, op, ": dropout probability p = ", p, " is outside [0, 1)");
  PT_CHECK_ARG(in.defined(), op, ": ", arg, " is not set");
#if PIPETRAIN_WITH_CUDA
  if (in.device() == Device::kCuda) {
    PT_CHECK_ARG(in.dtype() == DType::kF32 || in.dtype() == DType::kBF16, op, ": ", arg,
                 " has dtype ", DTypeName(in.dtype()), "; expected bf16 or f32 on the GPU");
    if (p == 0.0) return in;
    return cuda::DropoutApply(in, p, rng);
  }
#endif
  if (in.device() == Device::kCuda) {
    return absl::UnimplementedError(absl::StrCat(op, ": ", arg, " is on ", DeviceName(in.device()),
                                                 "; this build has no CUDA backend"));
  }
  const EmulatedKernelScope kernel(in.device());  // the CPU kernel, on emulated tensors too
  PT_CHECK_ARG(in.dtype() == DType::kF32 || in.dtype() == DType::kF64, op, ": ", arg, " has dtype ",
               DTypeName(in.dtype()), "; expected f32 or f64");
  // p == 0 is the evaluation path: no copy, the caller gets its own tensor back.
  if (p == 0.0) return in;
  Tensor out = Tensor::Empty(in.shape(), in.dtype());
  if (in.dtype() == DType::kF32) {
    cpu::DropoutApply<float>(in.data<float>(), out.data<float>(), in.numel(), p, rng);
  } else {
    cpu::DropoutApply<double>(in.data<double>(), out.data<double>(), in.numel(), p, rng);
  }
  return out;
}

}  // namespace

absl::StatusOr<Tensor> DropoutForward(const Tensor& x, double p, const RngKey& rng) {
  return ApplyMask(x, p, rng, "DropoutForward", "x");
}

absl::StatusOr<Tensor> DropoutBackward(const Tensor& dy, double p, const RngKey& rng) {
  return ApplyMask(dy, p, rng, "DropoutBackward", "dy");
}

}  // namespace pipetrain::ops
