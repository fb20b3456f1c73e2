// Shape and dtype checks for LayerNorm and PowerNorm, then dispatch to the CPU
// kernels or to the CUDA ones (layer_norm_cuda.cu) by the device of x.
#include "core/ops/layer_norm.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/ops/op_checks.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/layer_norm_cuda.h"
#endif
#include "core/status_macros.h"

namespace pipetrain::ops {
namespace cpu {
// Defined in layer_norm_cpu.cc for float and double. Every row has d > 0
// elements; mean/rstd/sigma may be null in the forwards (nothing is saved).
template <typename T>
void LayerNormForward(const T* x, const T* gamma, const T* beta, int64_t rows, int64_t d,
                      double eps, T* y, T* mean, T* rstd);
template <typename T>
void LayerNormBackwardInput(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                            int64_t rows, int64_t d, T* dx);
template <typename T>
void LayerNormBackwardWeight(const T* x, const T* mean, const T* rstd, const T* dy, int64_t rows,
                             int64_t d, T* dgamma, T* dbeta);
template <typename T>
void PowerNormForward(const T* x, int64_t rows, int64_t d, double power, double eps, T* y, T* mean,
                      T* sigma);
template <typename T>
void PowerNormBackward(const T* x, const T* mean, const T* sigma, double power, const T* dy,
                       int64_t rows, int64_t d, T* dx);
}  // namespace cpu

namespace {

// x is the normalised input: a float tensor [..., d] with d > 0.
absl::Status CheckInput(absl::string_view op, const Tensor& x) {
  PT_RETURN_IF_ERROR(CheckFloat(op, "x", x));
  PT_CHECK_ARG(x.rank() >= 1 && x.dim(-1) > 0, op, ": x must be [..., d] with d > 0, got ",
               ShapeString(x.shape()));
  return absl::OkStatus();
}

// `t` must be on x's device, with the given shape and dtype (x's own unless said).
absl::Status CheckLike(absl::string_view op, absl::string_view name, const Tensor& t,
                       const Tensor& x, const Shape& shape, DType dtype);
absl::Status CheckLike(absl::string_view op, absl::string_view name, const Tensor& t,
                       const Tensor& x, const Shape& shape) {
  return CheckLike(op, name, t, x, shape, x.dtype());
}
absl::Status CheckLike(absl::string_view op, absl::string_view name, const Tensor& t,
                       const Tensor& x, const Shape& shape, DType dtype) {
  PT_RETURN_IF_ERROR(CheckDevice(op, name, t, x.device()));
  PT_CHECK_ARG(t.dtype() == dtype, op, ": ", name, " is ", DTypeName(t.dtype()), " but must be ",
               DTypeName(dtype), " for x of ", DTypeName(x.dtype()), " on ",
               DeviceName(x.device()));
  PT_CHECK_ARG(t.shape() == shape, op, ": ", name, " must be ", ShapeString(shape), " for x ",
               ShapeString(x.shape()), ", got ", ShapeString(t.shape()));
  return absl::OkStatus();
}

absl::Status CheckEps(absl::string_view op, double eps) {
  PT_CHECK_ARG(std::isfinite(eps) && eps >= 0, op, ": eps must be finite and >= 0, got ", eps);
  return absl::OkStatus();
}

absl::Status CheckPower(absl::string_view op, double power) {
  PT_CHECK_ARG(power >= 0 && power <= 1, op, ": power must be in [0, 1], got ", power);
  return absl::OkStatus();
}

int64_t Rows(const Tensor& x) { return x.numel() / x.dim(-1); }

// Null when `t` is, else t's data as T.
template <typename T>
T* DataOrNull(Tensor* t) {
  return t != nullptr ? t->data<T>() : nullptr;
}

}  // namespace

absl::StatusOr<Tensor> LayerNormForward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        double eps, LayerNormSaved* saved) {
  constexpr absl::string_view kOp = "LayerNormForward";
  PT_RETURN_IF_ERROR(CheckInput(kOp, x));
  const int64_t d = x.dim(-1), rows = Rows(x);
  PT_RETURN_IF_ERROR(CheckLike(kOp, "gamma", gamma, x, {d}));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "beta", beta, x, {d}));
  PT_RETURN_IF_ERROR(CheckEps(kOp, eps));
  PT_DISPATCH_CUDA(x, cuda::LayerNormForward(x, gamma, beta, eps, saved));
  Tensor y = Tensor::Empty(x.shape(), x.dtype());
  Tensor* mean = nullptr;
  Tensor* rstd = nullptr;
  if (saved != nullptr) {
    saved->mean = Tensor::Empty({rows}, x.dtype());
    saved->rstd = Tensor::Empty({rows}, x.dtype());
    mean = &saved->mean;
    rstd = &saved->rstd;
  }
  if (x.dtype() == DType::kF32) {
    cpu::LayerNormForward<float>(x.data<float>(), gamma.data<float>(), beta.data<float>(), rows, d,
                                 eps, y.data<float>(), DataOrNull<float>(mean),
                                 DataOrNull<float>(rstd));
  } else {
    cpu::LayerNormForward<double>(x.data<double>(), gamma.data<double>(), beta.data<double>(), rows,
                                  d, eps, y.data<double>(), DataOrNull<double>(mean),
                                  DataOrNull<double>(rstd));
  }
  return y;
}

absl::StatusOr<Tensor> LayerNormBackwardInput(const Tensor& x, const Tensor& gamma,
                                              const LayerNormSaved& saved, const Tensor& dy) {
  constexpr absl::string_view kOp = "LayerNormBackwardInput";
  PT_RETURN_IF_ERROR(CheckInput(kOp, x));
  const int64_t d = x.dim(-1), rows = Rows(x);
  PT_RETURN_IF_ERROR(CheckLike(kOp, "gamma", gamma, x, {d}));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "saved.mean", saved.mean, x, {rows}, AccumulatorDType(x)));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "saved.rstd", saved.rstd, x, {rows}, AccumulatorDType(x)));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "dy", dy, x, x.shape()));
  PT_DISPATCH_CUDA(x, cuda::LayerNormBackwardInput(x, gamma, saved, dy));
  Tensor dx = Tensor::Empty(x.shape(), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::LayerNormBackwardInput<float>(x.data<float>(), gamma.data<float>(),
                                       saved.mean.data<float>(), saved.rstd.data<float>(),
                                       dy.data<float>(), rows, d, dx.data<float>());
  } else {
    cpu::LayerNormBackwardInput<double>(x.data<double>(), gamma.data<double>(),
                                        saved.mean.data<double>(), saved.rstd.data<double>(),
                                        dy.data<double>(), rows, d, dx.data<double>());
  }
  return dx;
}

absl::Status LayerNormBackwardWeight(const Tensor& x, const LayerNormSaved& saved, const Tensor& dy,
                                     Tensor& dgamma, Tensor& dbeta) {
  constexpr absl::string_view kOp = "LayerNormBackwardWeight";
  PT_RETURN_IF_ERROR(CheckInput(kOp, x));
  const int64_t d = x.dim(-1), rows = Rows(x);
  PT_RETURN_IF_ERROR(CheckLike(kOp, "saved.mean", saved.mean, x, {rows}, AccumulatorDType(x)));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "saved.rstd", saved.rstd, x, {rows}, AccumulatorDType(x)));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "dy", dy, x, x.shape()));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "dgamma", dgamma, x, {d}, AccumulatorDType(x)));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "dbeta", dbeta, x, {d}, AccumulatorDType(x)));
  PT_DISPATCH_CUDA(x, cuda::LayerNormBackwardWeight(x, saved, dy, dgamma, dbeta));
  if (x.dtype() == DType::kF32) {
    cpu::LayerNormBackwardWeight<float>(x.data<float>(), saved.mean.data<float>(),
                                        saved.rstd.data<float>(), dy.data<float>(), rows, d,
                                        dgamma.data<float>(), dbeta.data<float>());
  } else {
    cpu::LayerNormBackwardWeight<double>(x.data<double>(), saved.mean.data<double>(),
                                         saved.rstd.data<double>(), dy.data<double>(), rows, d,
                                         dgamma.data<double>(), dbeta.data<double>());
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> PowerNormForward(const Tensor& x, double power, double eps,
                                        PowerNormSaved* saved) {
  constexpr absl::string_view kOp = "PowerNormForward";
  PT_RETURN_IF_ERROR(CheckInput(kOp, x));
  PT_RETURN_IF_ERROR(CheckPower(kOp, power));
  PT_RETURN_IF_ERROR(CheckEps(kOp, eps));
  PT_DISPATCH_CUDA(x, cuda::PowerNormForward(x, power, eps, saved));
  const int64_t d = x.dim(-1), rows = Rows(x);
  Tensor y = Tensor::Empty(x.shape(), x.dtype());
  Tensor* mean = nullptr;
  Tensor* sigma = nullptr;
  if (saved != nullptr) {
    saved->mean = Tensor::Empty({rows}, x.dtype());
    saved->sigma = Tensor::Empty({rows}, x.dtype());
    saved->power = power;
    mean = &saved->mean;
    sigma = &saved->sigma;
  }
  if (x.dtype() == DType::kF32) {
    cpu::PowerNormForward<float>(x.data<float>(), rows, d, power, eps, y.data<float>(),
                                 DataOrNull<float>(mean), DataOrNull<float>(sigma));
  } else {
    cpu::PowerNormForward<double>(x.data<double>(), rows, d, power, eps, y.data<double>(),
                                  DataOrNull<double>(mean), DataOrNull<double>(sigma));
  }
  return y;
}

absl::StatusOr<Tensor> PowerNormBackward(const Tensor& x, const PowerNormSaved& saved,
                                         const Tensor& dy) {
  constexpr absl::string_view kOp = "PowerNormBackward";
  PT_RETURN_IF_ERROR(CheckInput(kOp, x));
  const int64_t d = x.dim(-1), rows = Rows(x);
  PT_RETURN_IF_ERROR(CheckPower(kOp, saved.power));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "saved.mean", saved.mean, x, {rows}, AccumulatorDType(x)));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "saved.sigma", saved.sigma, x, {rows}, AccumulatorDType(x)));
  PT_RETURN_IF_ERROR(CheckLike(kOp, "dy", dy, x, x.shape()));
  PT_DISPATCH_CUDA(x, cuda::PowerNormBackward(x, saved, dy));
  Tensor dx = Tensor::Empty(x.shape(), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::PowerNormBackward<float>(x.data<float>(), saved.mean.data<float>(),
                                  saved.sigma.data<float>(), saved.power, dy.data<float>(), rows, d,
                                  dx.data<float>());
  } else {
    cpu::PowerNormBackward<double>(x.data<double>(), saved.mean.data<double>(),
                                   saved.sigma.data<double>(), saved.power, dy.data<double>(), rows,
                                   d, dx.data<double>());
  }
  return dx;
}

}  // namespace pipetrain::ops
