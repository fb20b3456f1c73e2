// Shape, dtype and id-range checks for the embedding ops, then dispatch to the
// CPU kernels or to the CUDA ones (embedding_cuda.cu) by the device of the
// table (dy for the weight gradient, x for the positions).
#include "core/ops/embedding.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/device.h"
#include "core/ops/op_checks.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/embedding_cuda.h"
#endif
#include "core/status_macros.h"

namespace pipetrain::ops {
namespace cpu {
// Defined in embedding_cpu.cc for float and double. Ids are already range-checked.
template <typename T>
void EmbeddingForward(const int32_t* ids, int64_t n, const T* table, int64_t d, T scale, T* y);
template <typename T>
void EmbeddingBackwardWeight(const int32_t* ids, int64_t n, const T* dy, int64_t d, T scale,
                             T* dtable);
template <typename T>
void AddSinusoidalPositions(int64_t batch, int64_t len, int64_t d, T* x);
}  // namespace cpu

namespace {

// The multi-dimensional index of flat element `flat` in `shape`, as "[i,j,k]".
std::string IndexString(int64_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    index[i] = flat % shape[i];
    flat /= shape[i];
  }
  return ShapeString(index);
}

// ids must be i32 on `device` with every value in [0, vocab). Device ids are
// checked on a host copy (one int per token, small next to the activations),
// so the error names the id and its position as on the CPU.
absl::Status CheckIds(absl::string_view op, const Tensor& ids, int64_t vocab, Device device) {
  PT_CHECK_ARG(ids.defined(), op, ": ids is an undefined tensor");
  PT_CHECK_ARG(ids.dtype() == DType::kI32, op, ": ids must be i32, got ", DTypeName(ids.dtype()));
  if (device == Device::kCpu && ids.device() == Device::kCuda) {
    return absl::UnimplementedError(absl::StrCat(op, ": ids is on ", DeviceName(ids.device()),
                                                 "; only the CPU implementation is built"));
  }
  PT_RETURN_IF_ERROR(CheckDevice(op, "ids", ids, device));
  // Device ids are not read here: that would make the host wait for the
  // device at every embedding call. The trainer validates every batch's ids
  // once, on the host, when the batch is built (CheckBatchIds,
  // core/data/collate.h), and the kernels never read outside the table.
  if (ids.device() != Device::kCpu) return absl::OkStatus();
  const int32_t* p = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    PT_CHECK_ARG(p[i] >= 0 && p[i] < vocab, op, ": id ", p[i], " at position ",
                 IndexString(i, ids.shape()), " of ids ", ShapeString(ids.shape()),
                 " is outside the vocabulary [0, ", vocab, ")");
  }
  return absl::OkStatus();
}

// A float tensor of the dtypes its device computes in (on the CPU: the
// CPU-only check, whose message says a device tensor has no implementation).
absl::Status CheckFloatOn(absl::string_view op, absl::string_view name, const Tensor& t) {
  if (t.defined() && t.device() == Device::kCuda) return CheckFloat(op, name, t);
  return CheckFloatCpu(op, name, t);
}

absl::Status CheckTable(absl::string_view op, absl::string_view name, const Tensor& table) {
  PT_RETURN_IF_ERROR(CheckFloatOn(op, name, table));
  PT_CHECK_ARG(table.rank() == 2 && table.dim(0) > 0 && table.dim(1) > 0, op, ": ", name,
               " must be a non-empty [vocab, d] matrix, got ", ShapeString(table.shape()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> EmbeddingForward(const Tensor& ids, const Tensor& table, double scale) {
  constexpr absl::string_view kOp = "EmbeddingForward";
  PT_RETURN_IF_ERROR(CheckTable(kOp, "table", table));
  PT_RETURN_IF_ERROR(CheckIds(kOp, ids, table.dim(0), table.device()));
  PT_DISPATCH_CUDA(table, cuda::EmbeddingForward(ids, table, scale));
  const int64_t d = table.dim(1);
  Shape y_shape = ids.shape();
  y_shape.push_back(d);
  Tensor y = Tensor::Empty(y_shape, table.dtype());
  if (table.dtype() == DType::kF32) {
    cpu::EmbeddingForward<float>(ids.data<int32_t>(), ids.numel(), table.data<float>(), d,
                                 static_cast<float>(scale), y.data<float>());
  } else {
    cpu::EmbeddingForward<double>(ids.data<int32_t>(), ids.numel(), table.data<double>(), d, scale,
                                  y.data<double>());
  }
  return y;
}

absl::Status EmbeddingBackwardWeight(const Tensor& ids, const Tensor& dy, double scale,
                                     Tensor& dtable) {
  constexpr absl::string_view kOp = "EmbeddingBackwardWeight";
  PT_RETURN_IF_ERROR(CheckTable(kOp, "dtable", dtable));
  PT_RETURN_IF_ERROR(CheckFloatOn(kOp, "dy", dy));
  PT_RETURN_IF_ERROR(CheckDevice(kOp, "dtable", dtable, dy.device()));
  // On the GPU dy is bf16 or f32 and the weight gradient f32.
  PT_CHECK_ARG(dtable.dtype() == AccumulatorDType(dy), kOp, ": dy is ", DTypeName(dy.dtype()),
               " but dtable is ", DTypeName(dtable.dtype()), "; dtable must be ",
               DTypeName(AccumulatorDType(dy)), " on ", DeviceName(dy.device()));
  PT_RETURN_IF_ERROR(CheckIds(kOp, ids, dtable.dim(0), dy.device()));
  const int64_t d = dtable.dim(1);
  Shape want = ids.shape();
  want.push_back(d);
  PT_CHECK_ARG(dy.shape() == want, kOp, ": dy must be ", ShapeString(want), " (ids ",
               ShapeString(ids.shape()), " by d = ", d, "), got ", ShapeString(dy.shape()));
  PT_DISPATCH_CUDA(dy, cuda::EmbeddingBackwardWeight(ids, dy, scale, dtable));
  if (dtable.dtype() == DType::kF32) {
    cpu::EmbeddingBackwardWeight<float>(ids.data<int32_t>(), ids.numel(), dy.data<float>(), d,
                                        static_cast<float>(scale), dtable.data<float>());
  } else {
    cpu::EmbeddingBackwardWeight<double>(ids.data<int32_t>(), ids.numel(), dy.data<double>(), d,
                                         scale, dtable.data<double>());
  }
  return absl::OkStatus();
}

absl::Status AddSinusoidalPositions(Tensor& x) {
  constexpr absl::string_view kOp = "AddSinusoidalPositions";
  PT_RETURN_IF_ERROR(CheckFloatOn(kOp, "x", x));
  PT_CHECK_ARG(x.rank() == 3, kOp, ": x must be [batch, time, d], got ", ShapeString(x.shape()));
  PT_DISPATCH_CUDA(x, cuda::AddSinusoidalPositions(x));
  if (x.dtype() == DType::kF32) {
    cpu::AddSinusoidalPositions<float>(x.dim(0), x.dim(1), x.dim(2), x.data<float>());
  } else {
    cpu::AddSinusoidalPositions<double>(x.dim(0), x.dim(1), x.dim(2), x.data<double>());
  }
  return absl::OkStatus();
}

}  // namespace pipetrain::ops
