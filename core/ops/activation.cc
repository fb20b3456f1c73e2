// Shape and dtype checks for the activations, then dispatch to the CPU kernels
// or to the CUDA ones (activation_cuda.cu) by the device of x.
#include "core/ops/activation.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/ops/op_checks.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/activation_cuda.h"
#endif
#include "core/status_macros.h"

namespace pipetrain::ops {
namespace cpu {
// Defined in activation_cpu.cc for float and double.
template <typename T>
void ActivationForward(ActivationKind kind, const T* x, int64_t n, T* y);
template <typename T>
void ActivationBackward(ActivationKind kind, const T* x, const T* dy, int64_t n, T* dx);
}  // namespace cpu

namespace {

absl::Status CheckKind(absl::string_view op, ActivationKind kind) {
  PT_CHECK_ARG(kind == ActivationKind::kGelu || kind == ActivationKind::kRelu, op,
               ": unknown activation kind ", static_cast<int>(kind), "; expected kGelu or kRelu");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> ActivationForward(ActivationKind kind, const Tensor& x) {
  constexpr absl::string_view kOp = "ActivationForward";
  PT_RETURN_IF_ERROR(CheckKind(kOp, kind));
  PT_RETURN_IF_ERROR(CheckFloat(kOp, "x", x));
  PT_DISPATCH_CUDA(x, cuda::ActivationForward(kind, x));
  Tensor y = Tensor::Empty(x.shape(), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::ActivationForward<float>(kind, x.data<float>(), x.numel(), y.data<float>());
  } else {
    cpu::ActivationForward<double>(kind, x.data<double>(), x.numel(), y.data<double>());
  }
  return y;
}

absl::StatusOr<Tensor> ActivationBackward(ActivationKind kind, const Tensor& x, const Tensor& dy) {
  constexpr absl::string_view kOp = "ActivationBackward";
  PT_RETURN_IF_ERROR(CheckKind(kOp, kind));
  PT_RETURN_IF_ERROR(CheckFloat(kOp, "x", x));
  PT_RETURN_IF_ERROR(CheckFloat(kOp, "dy", dy));
  PT_RETURN_IF_ERROR(CheckDevice(kOp, "dy", dy, x.device()));
  PT_CHECK_ARG(dy.dtype() == x.dtype(), kOp, ": dy is ", DTypeName(dy.dtype()), " but x is ",
               DTypeName(x.dtype()), "; they must match");
  PT_CHECK_ARG(dy.shape() == x.shape(), kOp, ": dy must have x's shape ", ShapeString(x.shape()),
               ", got ", ShapeString(dy.shape()));
  PT_DISPATCH_CUDA(x, cuda::ActivationBackward(kind, x, dy));
  Tensor dx = Tensor::Empty(x.shape(), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::ActivationBackward<float>(kind, x.data<float>(), dy.data<float>(), x.numel(),
                                   dx.data<float>());
  } else {
    cpu::ActivationBackward<double>(kind, x.data<double>(), dy.data<double>(), x.numel(),
                                    dx.data<double>());
  }
  return dx;
}

}  // namespace pipetrain::ops
