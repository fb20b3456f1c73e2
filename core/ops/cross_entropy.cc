#include "core/ops/cross_entropy.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/device.h"
#include "core/ops/op_checks.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/cross_entropy_cuda.h"
#endif
#include "core/device_storage.h"
#include "core/status_macros.h"

namespace pipetrain::ops {
namespace cpu {
// Defined in cross_entropy_cpu.cc. Targets are already validated.
template <typename T>
CrossEntropyStats CrossEntropyForward(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                                      double smoothing, int32_t ignore_index, T* logsumexp,
                                      double* rows);  // n × 3 per-row sums when not null
template <typename T>
void CrossEntropyBackward(const T* logits, const int32_t* targets, int64_t n, int64_t v,
                          double smoothing, int32_t ignore_index, const T* logsumexp,
                          double grad_scale, T* dlogits);
}  // namespace cpu

namespace {

absl::Status CheckInputs(const char* op, const Tensor& logits, const Tensor& targets,
                         double smoothing, int32_t ignore_index) {
  PT_CHECK_ARG(logits.defined() && targets.defined(), op, ": logits and targets must be set");
  const bool on_gpu = logits.device() == Device::kCuda;
#if PIPETRAIN_WITH_CUDA
  if (on_gpu || targets.device() == Device::kCuda) {
    PT_RETURN_IF_ERROR(CheckDevice(op, "targets", targets, logits.device()));
  }
#endif
  if (!on_gpu && targets.device() != Device::kCuda) {
    PT_RETURN_IF_ERROR(CheckDevice(op, "targets", targets, logits.device()));
  }
  if (!on_gpu && (logits.device() == Device::kCuda || targets.device() == Device::kCuda)) {
    return absl::UnimplementedError(
        absl::StrCat(op, ": CUDA tensors need the CUDA backend, which this build lacks"));
  }
  PT_CHECK_ARG(logits.rank() == 2, op, ": logits must be [N, V], got ",
               ShapeString(logits.shape()));
  if (on_gpu) {
    PT_CHECK_ARG(logits.dtype() == DType::kF32 || logits.dtype() == DType::kBF16, op,
                 ": logits have dtype ", DTypeName(logits.dtype()),
                 "; expected bf16 or f32 on the GPU");
  } else {
    PT_CHECK_ARG(logits.dtype() == DType::kF32 || logits.dtype() == DType::kF64, op,
                 ": logits have dtype ", DTypeName(logits.dtype()), "; expected f32 or f64");
  }
  const int64_t n = logits.dim(0);
  const int64_t v = logits.dim(1);
  PT_CHECK_ARG(v >= 1, op, ": the vocabulary dimension of logits ", ShapeString(logits.shape()),
               " is empty");
  PT_CHECK_ARG(targets.dtype() == DType::kI32, op, ": targets have dtype ",
               DTypeName(targets.dtype()), "; expected i32");
  PT_CHECK_ARG(targets.rank() == 1 && targets.dim(0) == n, op, ": targets have shape ",
               ShapeString(targets.shape()), "; expected [", n, "] to match logits ",
               ShapeString(logits.shape()));
  PT_CHECK_ARG(smoothing >= 0.0 && smoothing <= 1.0, op, ": label smoothing ", smoothing,
               " is outside [0, 1]");
  // Device targets are not read here: reading them would make the host wait
  // for the device at every micro-batch. The trainer validates every batch's
  // ids once, on the host, when the batch is built (CheckBatchIds,
  // core/data/collate.h); the kernels skip an out-of-range target.
  if (targets.device() != Device::kCpu) return absl::OkStatus();
  const int32_t* t = targets.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (t[i] == ignore_index) continue;
    PT_CHECK_ARG(t[i] >= 0 && t[i] < v, op, ": targets[", i, "] = ", t[i],
                 " is outside the vocabulary [0, ", v, ") and is not ignore_index (", ignore_index,
                 ")");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CrossEntropyStats> CrossEntropyForward(const Tensor& logits, const Tensor& targets,
                                                      double smoothing, int32_t ignore_index,
                                                      CrossEntropySaved* saved,
                                                      bool sums_on_device) {
  PT_RETURN_IF_ERROR(CheckInputs("CrossEntropyForward", logits, targets, smoothing, ignore_index));
  PT_DISPATCH_CUDA(logits, cuda::CrossEntropyForward(logits, targets, smoothing, ignore_index,
                                                     saved, sums_on_device));
  const bool keep_rows = sums_on_device && logits.device() != Device::kCpu;
  // Sums returned on the host from the emulated device are a read of it, as
  // the GPU's are (core/device.h counts them).
  if (logits.device() == Device::kEmulated && !keep_rows) {
    device_storage::CountDeviceToHost(3 * sizeof(double) * logits.dim(0));
  }
  const int64_t n = logits.dim(0);
  const int64_t v = logits.dim(1);
  Tensor lse = Tensor::Empty({n}, logits.dtype());
  Tensor rows = keep_rows ? Tensor::Empty({n, 3}, DType::kF64) : Tensor();
  double* row_sums = keep_rows ? rows.data<double>() : nullptr;
  CrossEntropyStats stats;
  if (logits.dtype() == DType::kF32) {
    stats = cpu::CrossEntropyForward<float>(logits.data<float>(), targets.data<int32_t>(), n, v,
                                            smoothing, ignore_index, lse.data<float>(), row_sums);
  } else {
    stats = cpu::CrossEntropyForward<double>(logits.data<double>(), targets.data<int32_t>(), n, v,
                                             smoothing, ignore_index, lse.data<double>(), row_sums);
  }
  if (keep_rows) stats = CrossEntropyStats{.rows = std::move(rows)};
  if (saved != nullptr) saved->logsumexp = std::move(lse);
  return stats;
}

absl::Status ReadCrossEntropySums(const std::vector<CrossEntropyStats*>& stats) {
  std::vector<CrossEntropyStats*> pending;
  int64_t total = 0;
  for (CrossEntropyStats* s : stats) {
    if (s == nullptr || !s->rows.defined()) continue;
    PT_CHECK_ARG(s->rows.dtype() == DType::kF64 && s->rows.rank() == 2 && s->rows.dim(1) == 3,
                 "ReadCrossEntropySums: rows are ", s->rows.DebugString(), "; expected f64 [N, 3]");
    PT_CHECK_ARG(pending.empty() || s->rows.device() == pending[0]->rows.device(),
                 "ReadCrossEntropySums: rows on ", DeviceName(s->rows.device()), " and on ",
                 DeviceName(pending[0]->rows.device()));
    pending.push_back(s);
    total += s->rows.dim(0);
  }
  if (pending.empty()) return absl::OkStatus();
  // Gathered on the device, then read in one copy.
  Tensor all = Tensor::Empty({total, 3}, DType::kF64, pending[0]->rows.device());
  int64_t at = 0;
  for (CrossEntropyStats* s : pending) {
    Tensor part = all.View(at * 3, s->rows.shape());
    PT_RETURN_IF_ERROR(CopyTensor(s->rows, part));
    at += s->rows.dim(0);
  }
  PT_ASSIGN_OR_RETURN(const Tensor host, CopyToDevice(all, Device::kCpu));
  const double* row = host.data<double>();
  for (CrossEntropyStats* s : pending) {
    CrossEntropyStats sums;
    for (int64_t r = 0; r < s->rows.dim(0); ++r, row += 3) {
      if (row[2] == 0.0) continue;
      sums.loss_sum += row[0];
      sums.nll_sum += row[1];
      ++sums.tokens;
    }
    *s = sums;
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CrossEntropyBackward(const Tensor& logits, const Tensor& targets,
                                            double smoothing, int32_t ignore_index,
                                            const CrossEntropySaved& saved, double grad_scale) {
  PT_RETURN_IF_ERROR(CheckInputs("CrossEntropyBackward", logits, targets, smoothing, ignore_index));
  const int64_t n = logits.dim(0);
  const int64_t v = logits.dim(1);
  const Tensor& lse = saved.logsumexp;
  PT_CHECK_ARG(lse.defined(),
               "CrossEntropyBackward: saved.logsumexp is not set; run "
               "CrossEntropyForward with a saved struct first");
  PT_CHECK_ARG(lse.device() == logits.device() && lse.dtype() == AccumulatorDType(logits) &&
                   lse.shape() == Shape{n},
               "CrossEntropyBackward: saved.logsumexp is ", lse.DebugString(), "; expected ",
               DTypeName(AccumulatorDType(logits)), " [", n, "] on ", DeviceName(logits.device()),
               " from the forward of these logits");
  PT_CHECK_ARG(std::isfinite(grad_scale), "CrossEntropyBackward: grad_scale ", grad_scale,
               " is not finite");
  PT_DISPATCH_CUDA(logits, cuda::CrossEntropyBackward(logits, targets, smoothing, ignore_index,
                                                      saved, grad_scale));
  Tensor dlogits = Tensor::Empty(logits.shape(), logits.dtype());
  if (logits.dtype() == DType::kF32) {
    cpu::CrossEntropyBackward<float>(logits.data<float>(), targets.data<int32_t>(), n, v, smoothing,
                                     ignore_index, lse.data<float>(), grad_scale,
                                     dlogits.data<float>());
  } else {
    cpu::CrossEntropyBackward<double>(logits.data<double>(), targets.data<int32_t>(), n, v,
                                      smoothing, ignore_index, lse.data<double>(), grad_scale,
                                      dlogits.data<double>());
  }
  return dlogits;
}

}  // namespace pipetrain::ops
