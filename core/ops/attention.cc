#include "core/ops/attention.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/device_storage.h"
#include "core/ops/op_checks.h"
#include "core/status_macros.h"
#if PIPETRAIN_WITH_CUDA
#include "core/ops/attention_cuda.h"
#endif

namespace pipetrain::ops {
namespace cpu {
// Defined in attention_cpu.cc. Shapes and key lengths are already validated;
// key_lengths is null when every key is valid.
template <typename T>
void AttentionForward(const T* q, const T* k, const T* v, int64_t batch, int64_t tq, int64_t tk,
                      int64_t heads, int64_t head_dim, bool causal, const int32_t* key_lengths,
                      double dropout, const RngKey& rng, T* probs, T* context);
template <typename T>
void AttentionBackward(const T* q, const T* k, const T* v, int64_t batch, int64_t tq, int64_t tk,
                       int64_t heads, int64_t head_dim, bool causal, const int32_t* key_lengths,
                       double dropout, const RngKey& rng, const T* probs, const T* dcontext, T* dq,
                       T* dk, T* dv);
}  // namespace cpu

namespace {

struct Dims {
  int64_t batch, tq, tk, heads, head_dim;
};

std::string Describe(const Tensor& t) { return t.defined() ? t.DebugString() : "unset"; }

absl::StatusOr<Dims> CheckInputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionOptions& options) {
  PT_CHECK_ARG(q.defined() && k.defined() && v.defined(), op, ": q, k and v must be set");
  PT_RETURN_IF_ERROR(CheckFloat(op, "q", q));
  PT_RETURN_IF_ERROR(CheckDevice(op, "k", k, q.device()));
  PT_RETURN_IF_ERROR(CheckDevice(op, "v", v, q.device()));
  PT_CHECK_ARG(k.dtype() == q.dtype() && v.dtype() == q.dtype(), op,
               ": q, k and v must share a dtype, got ", DTypeName(q.dtype()), ", ",
               DTypeName(k.dtype()), ", ", DTypeName(v.dtype()));
  PT_CHECK_ARG(q.rank() == 3 && k.rank() == 3 && v.rank() == 3, op,
               ": q, k and v must be [B, T, H·Dh], got q ", ShapeString(q.shape()), ", k ",
               ShapeString(k.shape()), ", v ", ShapeString(v.shape()));
  PT_CHECK_ARG(k.shape() == v.shape(), op, ": k ", ShapeString(k.shape()), " and v ",
               ShapeString(v.shape()), " must have the same shape");
  Dims d{q.dim(0), q.dim(1), k.dim(1), options.heads, 0};
  const int64_t width = q.dim(2);
  PT_CHECK_ARG(k.dim(0) == d.batch && k.dim(2) == width, op, ": k ", ShapeString(k.shape()),
               " must be [", d.batch, ", Tk, ", width, "] to match q ", ShapeString(q.shape()));
  PT_CHECK_ARG(d.batch >= 1 && d.tq >= 1 && d.tk >= 1 && width >= 1, op,
               ": empty attention inputs, q ", ShapeString(q.shape()), ", k ",
               ShapeString(k.shape()));
  PT_CHECK_ARG(d.heads >= 1 && width % d.heads == 0, op, ": options.heads = ", d.heads,
               " must be positive and divide the model width ", width);
  d.head_dim = width / d.heads;
  PT_CHECK_ARG(!options.causal || d.tq == d.tk, op,
               ": a causal mask needs as many queries as keys, got Tq = ", d.tq,
               " and Tk = ", d.tk);
  PT_CHECK_ARG(options.dropout >= 0.0 && options.dropout < 1.0, op,
               ": options.dropout = ", options.dropout, " is outside [0, 1)");
  const Tensor& lengths = options.key_lengths;
  if (lengths.defined()) {
    PT_CHECK_ARG((lengths.device() == Device::kCpu || lengths.device() == q.device()) &&
                     lengths.dtype() == DType::kI32 && lengths.shape() == Shape{d.batch},
                 op, ": options.key_lengths is ", lengths.DebugString(), "; expected i32 [",
                 d.batch, "] on the cpu or on ", DeviceName(q.device()));
    // Lengths already on the device were uploaded once per batch and checked
    // on the host when the batch was built (CheckBatchIds); reading them back
    // here would make every attention call wait for the device.
    if (lengths.device() != Device::kCpu) return d;
    const int32_t* len = lengths.data<int32_t>();
    for (int64_t b = 0; b < d.batch; ++b) {
      PT_CHECK_ARG(len[b] >= 1 && len[b] <= d.tk, op, ": options.key_lengths[", b, "] = ", len[b],
                   " is outside [1, Tk = ", d.tk, "]");
    }
  }
  return d;
}

// Host key lengths with device inputs: the GPU uploads them at every call
// (core/ops/attention_cuda.cu). The emulated device, whose kernel reads them
// where they are, counts that upload all the same, so a test can see it.
void CountLengthsUpload(const Tensor& q, const AttentionOptions& options) {
  if (q.device() == Device::kEmulated && options.key_lengths.defined() &&
      options.key_lengths.device() == Device::kCpu) {
    device_storage::CountHostToDevice(options.key_lengths.nbytes());
  }
}

}  // namespace

absl::StatusOr<Tensor> AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionOptions& options, AttentionSaved* saved) {
  PT_ASSIGN_OR_RETURN(const Dims d, CheckInputs("AttentionForward", q, k, v, options));
  PT_DISPATCH_CUDA(q, cuda::AttentionForward(q, k, v, options, d.heads, saved));
  CountLengthsUpload(q, options);
  Tensor probs = Tensor::Empty({d.batch, d.heads, d.tq, d.tk}, q.dtype());
  Tensor context = Tensor::Empty(q.shape(), q.dtype());
  const int32_t* lengths =
      options.key_lengths.defined() ? options.key_lengths.data<int32_t>() : nullptr;
  if (q.dtype() == DType::kF32) {
    cpu::AttentionForward<float>(q.data<float>(), k.data<float>(), v.data<float>(), d.batch, d.tq,
                                 d.tk, d.heads, d.head_dim, options.causal, lengths,
                                 options.dropout, options.rng, probs.data<float>(),
                                 context.data<float>());
  } else {
    cpu::AttentionForward<double>(q.data<double>(), k.data<double>(), v.data<double>(), d.batch,
                                  d.tq, d.tk, d.heads, d.head_dim, options.causal, lengths,
                                  options.dropout, options.rng, probs.data<double>(),
                                  context.data<double>());
  }
  if (saved != nullptr) saved->probs = std::move(probs);
  return context;
}

absl::Status AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& options, const AttentionSaved& saved,
                               const Tensor& dcontext, Tensor* dq, Tensor* dk, Tensor* dv) {
  PT_ASSIGN_OR_RETURN(const Dims d, CheckInputs("AttentionBackward", q, k, v, options));
  const Shape probs_shape{d.batch, d.heads, d.tq, d.tk};
  PT_CHECK_ARG(saved.probs.defined() && saved.probs.device() == q.device() &&
                   saved.probs.dtype() == AccumulatorDType(q) && saved.probs.shape() == probs_shape,
               "AttentionBackward: saved.probs is ", Describe(saved.probs), "; expected ",
               DTypeName(AccumulatorDType(q)), DeviceName(q.device()), ShapeString(probs_shape),
               " from the forward of these inputs");
  PT_CHECK_ARG(dcontext.defined() && dcontext.device() == q.device() &&
                   dcontext.dtype() == q.dtype() && dcontext.shape() == q.shape(),
               "AttentionBackward: dcontext is ", Describe(dcontext), "; expected ",
               q.DebugString(), " (the shape of q)");
  PT_CHECK_ARG(dq != nullptr && dk != nullptr && dv != nullptr,
               "AttentionBackward: dq, dk and dv must not be null");
  PT_DISPATCH_CUDA(q,
                   cuda::AttentionBackward(q, k, v, options, d.heads, saved, dcontext, dq, dk, dv));
  CountLengthsUpload(q, options);
  // Always fresh outputs, assigned only at the end: writing into whatever the
  // caller's tensors held could clobber a tensor sharing their storage (even dcontext).
  Tensor grad_q = Tensor::Empty(q.shape(), q.dtype());
  Tensor grad_k = Tensor::Empty(k.shape(), k.dtype());
  Tensor grad_v = Tensor::Empty(v.shape(), v.dtype());
  const int32_t* lengths =
      options.key_lengths.defined() ? options.key_lengths.data<int32_t>() : nullptr;
  if (q.dtype() == DType::kF32) {
    cpu::AttentionBackward<float>(
        q.data<float>(), k.data<float>(), v.data<float>(), d.batch, d.tq, d.tk, d.heads, d.head_dim,
        options.causal, lengths, options.dropout, options.rng, saved.probs.data<float>(),
        dcontext.data<float>(), grad_q.data<float>(), grad_k.data<float>(), grad_v.data<float>());
  } else {
    cpu::AttentionBackward<double>(q.data<double>(), k.data<double>(), v.data<double>(), d.batch,
                                   d.tq, d.tk, d.heads, d.head_dim, options.causal, lengths,
                                   options.dropout, options.rng, saved.probs.data<double>(),
                                   dcontext.data<double>(), grad_q.data<double>(),
                                   grad_k.data<double>(), grad_v.data<double>());
  }
  *dq = std::move(grad_q);
  *dk = std::move(grad_k);
  *dv = std::move(grad_v);
  return absl::OkStatus();
}

}  // namespace pipetrain::ops
