// Shape and dtype checks for the elementwise ops, then dispatch to the CPU
// kernels or to the CUDA ones (elementwise_cuda.cu) by the device of x.
#include "core/ops/elementwise.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/ops/op_checks.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/elementwise_cuda.h"
#endif
#include "core/device_storage.h"
#include "core/status_macros.h"

namespace pipetrain::ops {
namespace cpu {
// Defined in elementwise_cpu.cc for float and double.
template <typename T>
void AddScaled(T a, const T* x, T b, const T* y, int64_t n, T* out);
template <typename T>
void Axpy(T a, const T* x, int64_t n, T* y);
template <typename T>
double Dot(const T* x, const T* y, int64_t n);
template <typename T>
void HeadScale(const T* x, const T* s, int64_t rows, int64_t heads, int64_t head_dim, T* y);
template <typename T>
void HeadScaleBackwardWeight(const T* x, const T* dy, int64_t rows, int64_t heads, int64_t head_dim,
                             T* ds);
}  // namespace cpu

namespace {

// Both float tensors on one device with the same dtype and shape.
absl::Status CheckPair(absl::string_view op, absl::string_view a_name, const Tensor& a,
                       absl::string_view b_name, const Tensor& b) {
  PT_RETURN_IF_ERROR(CheckFloat(op, a_name, a));
  PT_RETURN_IF_ERROR(CheckFloat(op, b_name, b));
  PT_RETURN_IF_ERROR(CheckDevice(op, b_name, b, a.device()));
  PT_CHECK_ARG(a.dtype() == b.dtype(), op, ": ", a_name, " is ", DTypeName(a.dtype()), " but ",
               b_name, " is ", DTypeName(b.dtype()), "; they must match");
  PT_CHECK_ARG(a.shape() == b.shape(), op, ": ", a_name, " ", ShapeString(a.shape()), " and ",
               b_name, " ", ShapeString(b.shape()), " must have the same shape");
  return absl::OkStatus();
}

// Checks the per-head scale `s` [H] against `t` [..., H·Dh] and returns Dh.
// `s` has t's dtype, except a gradient `ds` (s_dtype), f32 on the GPU.
absl::StatusOr<int64_t> HeadDim(absl::string_view op, absl::string_view t_name, const Tensor& t,
                                absl::string_view s_name, const Tensor& s, DType s_dtype) {
  PT_RETURN_IF_ERROR(CheckFloat(op, t_name, t));
  PT_RETURN_IF_ERROR(CheckFloat(op, s_name, s));
  PT_RETURN_IF_ERROR(CheckDevice(op, s_name, s, t.device()));
  PT_CHECK_ARG(s.dtype() == s_dtype, op, ": ", s_name, " is ", DTypeName(s.dtype()), " but ",
               t_name, " is ", DTypeName(t.dtype()), "; ", s_name, " must be ", DTypeName(s_dtype));
  PT_CHECK_ARG(s.rank() == 1 && s.dim(0) > 0, op, ": ", s_name,
               " must be a non-empty [heads] vector, got ", ShapeString(s.shape()));
  const int64_t heads = s.dim(0);
  PT_CHECK_ARG(t.rank() >= 1 && t.dim(-1) > 0 && t.dim(-1) % heads == 0, op, ": ", t_name,
               " must be [..., heads·head_dim] with heads = ", heads, " (from ", s_name, "), got ",
               ShapeString(t.shape()));
  return t.dim(-1) / heads;
}
absl::StatusOr<int64_t> HeadDim(absl::string_view op, absl::string_view t_name, const Tensor& t,
                                absl::string_view s_name, const Tensor& s) {
  return HeadDim(op, t_name, t, s_name, s, t.dtype());
}

}  // namespace

absl::StatusOr<Tensor> AddScaled(double a, const Tensor& x, double b, const Tensor& y) {
  PT_RETURN_IF_ERROR(CheckPair("AddScaled", "x", x, "y", y));
  PT_DISPATCH_CUDA(x, cuda::AddScaled(a, x, b, y));
  Tensor out = Tensor::Empty(x.shape(), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::AddScaled<float>(static_cast<float>(a), x.data<float>(), static_cast<float>(b),
                          y.data<float>(), x.numel(), out.data<float>());
  } else {
    cpu::AddScaled<double>(a, x.data<double>(), b, y.data<double>(), x.numel(), out.data<double>());
  }
  return out;
}

absl::Status Axpy(double a, const Tensor& x, Tensor& y) {
  PT_RETURN_IF_ERROR(CheckPair("Axpy", "x", x, "y", y));
  PT_DISPATCH_CUDA(x, cuda::Axpy(a, x, y));
  if (x.dtype() == DType::kF32) {
    cpu::Axpy<float>(static_cast<float>(a), x.data<float>(), x.numel(), y.data<float>());
  } else {
    cpu::Axpy<double>(a, x.data<double>(), x.numel(), y.data<double>());
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Scale(const Tensor& x, double a) {
  PT_RETURN_IF_ERROR(CheckFloat("Scale", "x", x));
  PT_DISPATCH_CUDA(x, cuda::Scale(x, a));
  Tensor out = Tensor::Zeros(x.shape(), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::Axpy<float>(static_cast<float>(a), x.data<float>(), x.numel(), out.data<float>());
  } else {
    cpu::Axpy<double>(a, x.data<double>(), x.numel(), out.data<double>());
  }
  return out;
}

absl::StatusOr<double> Dot(const Tensor& x, const Tensor& y) {
  PT_RETURN_IF_ERROR(CheckPair("Dot", "x", x, "y", y));
  PT_DISPATCH_CUDA(x, cuda::Dot(x, y));
  // A result on the host is a read of the device (counted as the GPU's is).
  if (x.device() == Device::kEmulated) device_storage::CountDeviceToHost(sizeof(double));
  if (x.dtype() == DType::kF32) return cpu::Dot<float>(x.data<float>(), y.data<float>(), x.numel());
  return cpu::Dot<double>(x.data<double>(), y.data<double>(), x.numel());
}

absl::StatusOr<Tensor> HeadScaleForward(const Tensor& x, const Tensor& s) {
  PT_ASSIGN_OR_RETURN(const int64_t head_dim, HeadDim("HeadScaleForward", "x", x, "s", s));
  PT_DISPATCH_CUDA(x, cuda::HeadScale(x, s, head_dim));
  const int64_t heads = s.dim(0), rows = x.numel() / x.dim(-1);
  Tensor y = Tensor::Empty(x.shape(), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::HeadScale<float>(x.data<float>(), s.data<float>(), rows, heads, head_dim, y.data<float>());
  } else {
    cpu::HeadScale<double>(x.data<double>(), s.data<double>(), rows, heads, head_dim,
                           y.data<double>());
  }
  return y;
}

absl::StatusOr<Tensor> HeadScaleBackwardInput(const Tensor& s, const Tensor& dy) {
  // y is linear in x with the same per-head factors, so dx applies them to dy.
  PT_ASSIGN_OR_RETURN(const int64_t head_dim, HeadDim("HeadScaleBackwardInput", "dy", dy, "s", s));
  PT_DISPATCH_CUDA(dy, cuda::HeadScale(dy, s, head_dim));
  const int64_t heads = s.dim(0), rows = dy.numel() / dy.dim(-1);
  Tensor dx = Tensor::Empty(dy.shape(), dy.dtype());
  if (dy.dtype() == DType::kF32) {
    cpu::HeadScale<float>(dy.data<float>(), s.data<float>(), rows, heads, head_dim,
                          dx.data<float>());
  } else {
    cpu::HeadScale<double>(dy.data<double>(), s.data<double>(), rows, heads, head_dim,
                           dx.data<double>());
  }
  return dx;
}

absl::Status HeadScaleBackwardWeight(const Tensor& x, const Tensor& dy, Tensor& ds) {
  constexpr absl::string_view kOp = "HeadScaleBackwardWeight";
  PT_RETURN_IF_ERROR(CheckPair(kOp, "x", x, "dy", dy));
  PT_ASSIGN_OR_RETURN(const int64_t head_dim, HeadDim(kOp, "x", x, "ds", ds, AccumulatorDType(x)));
  PT_DISPATCH_CUDA(x, cuda::HeadScaleBackwardWeight(x, dy, head_dim, ds));
  const int64_t heads = ds.dim(0), rows = x.numel() / x.dim(-1);
  if (x.dtype() == DType::kF32) {
    cpu::HeadScaleBackwardWeight<float>(x.data<float>(), dy.data<float>(), rows, heads, head_dim,
                                        ds.data<float>());
  } else {
    cpu::HeadScaleBackwardWeight<double>(x.data<double>(), dy.data<double>(), rows, heads, head_dim,
                                         ds.data<double>());
  }
  return absl::OkStatus();
}

}  // namespace pipetrain::ops
