// Shape and dtype checks for the linear op, then dispatch to the CPU kernels
// or to the CUDA ones (linear_cuda.cu) by the device of the activations.
#include "core/ops/linear.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/ops/op_checks.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/linear_cuda.h"
#endif
#include "core/status_macros.h"

namespace pipetrain::ops {
namespace cpu {
// Defined in linear_cpu.cc for float and double. Row-major; rows may be 0.
template <typename T>
void LinearForward(const T* x, const T* w, const T* b, int64_t rows, int64_t in, int64_t out, T* y);
template <typename T>
void LinearBackwardInput(const T* dy, const T* w, int64_t rows, int64_t in, int64_t out, T* dx);
template <typename T>
void LinearBackwardWeight(const T* x, const T* dy, int64_t rows, int64_t in, int64_t out, T* dw,
                          T* db);
}  // namespace cpu

namespace {

absl::Status CheckSameDType(absl::string_view op, absl::string_view name, const Tensor& t,
                            absl::string_view ref_name, const Tensor& ref) {
  PT_CHECK_ARG(t.dtype() == ref.dtype(), op, ": ", name, " is ", DTypeName(t.dtype()), " but ",
               ref_name, " is ", DTypeName(ref.dtype()), "; they must match");
  return absl::OkStatus();
}

// `t` must be of `dtype` (the accumulator dtype for x, named ref_name).
absl::Status CheckDType(absl::string_view op, absl::string_view name, const Tensor& t,
                        DType dtype, absl::string_view ref_name, const Tensor& ref) {
  PT_CHECK_ARG(t.dtype() == dtype, op, ": ", name, " is ", DTypeName(t.dtype()), " but must be ",
               DTypeName(dtype), " for ", ref_name, " of ", DTypeName(ref.dtype()), " on ",
               DeviceName(ref.device()));
  return absl::OkStatus();
}

// w must be a non-empty [out, in] matrix.
absl::Status CheckWeight(absl::string_view op, const Tensor& w) {
  PT_RETURN_IF_ERROR(CheckFloat(op, "w", w));
  PT_CHECK_ARG(w.rank() == 2 && w.dim(0) > 0 && w.dim(1) > 0, op,
               ": w must be a non-empty [out, in] matrix, got ", ShapeString(w.shape()));
  return absl::OkStatus();
}

// The shape of `t` with its last dimension replaced by `last`.
Shape WithLastDim(const Shape& shape, int64_t last) {
  Shape s = shape;
  s.back() = last;
  return s;
}

}  // namespace

absl::StatusOr<Tensor> LinearForward(const Tensor& x, const Tensor& w, const Tensor* b) {
  constexpr absl::string_view kOp = "LinearForward";
  PT_RETURN_IF_ERROR(CheckWeight(kOp, w));
  PT_RETURN_IF_ERROR(CheckFloat(kOp, "x", x));
  PT_RETURN_IF_ERROR(CheckDevice(kOp, "w", w, x.device()));
  PT_RETURN_IF_ERROR(CheckSameDType(kOp, "x", x, "w", w));
  const int64_t out = w.dim(0), in = w.dim(1);
  PT_CHECK_ARG(x.rank() >= 1 && x.dim(-1) == in, kOp, ": x must be [..., ", in, "] to match w ",
               ShapeString(w.shape()), ", got ", ShapeString(x.shape()));
  if (b != nullptr) {
    PT_RETURN_IF_ERROR(CheckFloat(kOp, "b", *b));
    PT_RETURN_IF_ERROR(CheckDevice(kOp, "b", *b, x.device()));
    PT_RETURN_IF_ERROR(CheckSameDType(kOp, "b", *b, "w", w));
    PT_CHECK_ARG(b->rank() == 1 && b->dim(0) == out, kOp, ": b must be [", out, "] to match w ",
                 ShapeString(w.shape()), ", got ", ShapeString(b->shape()));
  }
  PT_DISPATCH_CUDA(x, cuda::LinearForward(x, w, b));
  const int64_t rows = x.numel() / in;
  Tensor y = Tensor::Empty(WithLastDim(x.shape(), out), x.dtype());
  if (x.dtype() == DType::kF32) {
    cpu::LinearForward<float>(x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr,
                              rows, in, out, y.data<float>());
  } else {
    cpu::LinearForward<double>(x.data<double>(), w.data<double>(), b ? b->data<double>() : nullptr,
                               rows, in, out, y.data<double>());
  }
  return y;
}

absl::StatusOr<Tensor> LinearBackwardInput(const Tensor& dy, const Tensor& w) {
  constexpr absl::string_view kOp = "LinearBackwardInput";
  PT_RETURN_IF_ERROR(CheckWeight(kOp, w));
  PT_RETURN_IF_ERROR(CheckFloat(kOp, "dy", dy));
  PT_RETURN_IF_ERROR(CheckDevice(kOp, "w", w, dy.device()));
  PT_RETURN_IF_ERROR(CheckSameDType(kOp, "dy", dy, "w", w));
  const int64_t out = w.dim(0), in = w.dim(1);
  PT_CHECK_ARG(dy.rank() >= 1 && dy.dim(-1) == out, kOp, ": dy must be [..., ", out,
               "] to match w ", ShapeString(w.shape()), ", got ", ShapeString(dy.shape()));
  PT_DISPATCH_CUDA(dy, cuda::LinearBackwardInput(dy, w));
  const int64_t rows = dy.numel() / out;
  Tensor dx = Tensor::Empty(WithLastDim(dy.shape(), in), dy.dtype());
  if (dy.dtype() == DType::kF32) {
    cpu::LinearBackwardInput<float>(dy.data<float>(), w.data<float>(), rows, in, out,
                                    dx.data<float>());
  } else {
    cpu::LinearBackwardInput<double>(dy.data<double>(), w.data<double>(), rows, in, out,
                                     dx.data<double>());
  }
  return dx;
}

absl::Status LinearBackwardWeight(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db) {
  constexpr absl::string_view kOp = "LinearBackwardWeight";
  PT_RETURN_IF_ERROR(CheckWeight(kOp, dw));
  PT_RETURN_IF_ERROR(CheckFloat(kOp, "x", x));
  PT_RETURN_IF_ERROR(CheckFloat(kOp, "dy", dy));
  PT_RETURN_IF_ERROR(CheckDevice(kOp, "dy", dy, x.device()));
  PT_RETURN_IF_ERROR(CheckDevice(kOp, "dw", dw, x.device()));
  // dw (and db) hold x's accumulator dtype: x's own on the CPU, f32 on the GPU.
  PT_RETURN_IF_ERROR(CheckDType(kOp, "dw", dw, AccumulatorDType(x), "x", x));
  PT_RETURN_IF_ERROR(CheckSameDType(kOp, "dy", dy, "x", x));
  const int64_t out = dw.dim(0), in = dw.dim(1);
  PT_CHECK_ARG(x.rank() >= 1 && x.dim(-1) == in, kOp, ": x must be [..., ", in, "] to match dw ",
               ShapeString(dw.shape()), ", got ", ShapeString(x.shape()));
  PT_CHECK_ARG(dy.shape() == WithLastDim(x.shape(), out), kOp, ": dy must be ",
               ShapeString(WithLastDim(x.shape(), out)), " (x ", ShapeString(x.shape()),
               " with the last dim set to out = ", out, "), got ", ShapeString(dy.shape()));
  if (db != nullptr) {
    PT_RETURN_IF_ERROR(CheckDevice(kOp, "db", *db, x.device()));
    PT_RETURN_IF_ERROR(CheckSameDType(kOp, "db", *db, "dw", dw));
    PT_CHECK_ARG(db->rank() == 1 && db->dim(0) == out, kOp, ": db must be [", out, "] to match dw ",
                 ShapeString(dw.shape()), ", got ", ShapeString(db->shape()));
  }
  PT_DISPATCH_CUDA(x, cuda::LinearBackwardWeight(x, dy, dw, db));
  const int64_t rows = x.numel() / in;
  if (dw.dtype() == DType::kF32) {
    cpu::LinearBackwardWeight<float>(x.data<float>(), dy.data<float>(), rows, in, out,
                                     dw.data<float>(), db ? db->data<float>() : nullptr);
  } else {
    cpu::LinearBackwardWeight<double>(x.data<double>(), dy.data<double>(), rows, in, out,
                                      dw.data<double>(), db ? db->data<double>() : nullptr);
  }
  return absl::OkStatus();
}

}  // namespace pipetrain::ops
