// CUDA attention, first version: plain kernels, one block per query row
// (forward, dq) or per key row (dk, dv), every sum over keys or queries taken
// by one thread in index order. Deterministic and simple to check against the
// CPU; not yet fast. The planned fast path (cuDNN's fused SDPA through its
// graph API, or a flash-style kernel of our own, whichever measures faster)
// replaces these once a GPU is at hand to measure them (docs/gpu-validation.md).
//
// Layouts match the CPU: q, context [B, Tq, H·Dh]; k, v [B, Tk, H·Dh]; probs
// [B, H, Tq, Tk] in f32 (softmax after masking, before dropout; zero where
// masked). Dropout draws element (b·H + h)·Tq·Tk + i·Tk + j of the Philox
// stream, exactly as the CPU, so masks agree bit for bit.
#include <cuda_bf16.h>

#include <cmath>
#include <vector>

#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/device.h"
#include "core/ops/attention_cuda.h"
#include "core/philox.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::BlockSum;
using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::ForDType;
using ::pipetrain::cuda::FromFloat;
using ::pipetrain::cuda::Ptr;
using ::pipetrain::cuda::ToFloat;

constexpr int kThreads = 128;

struct Geometry {
  int tq, tk, heads, head_dim;
  bool causal;
  float scale;     // 1/sqrt(Dh)
  double dropout;  // probability of dropping
  philox::StreamWords rng;
};

__device__ __forceinline__ int VisibleKeys(int i, int keys, bool causal) {
  return causal ? min(keys, i + 1) : keys;
}

// 1/(1 − p) for a kept probability, 0 for a dropped one (1 without dropout).
__device__ __forceinline__ float DropFactor(const Geometry& g, uint64_t index) {
  if (g.dropout <= 0.0) return 1.f;
  return philox::Dropped(g.rng, index, g.dropout) ? 0.f
                                                  : static_cast<float>(1.0 / (1.0 - g.dropout));
}

__device__ float BlockMax(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = lane < warps ? scratch[lane] : -INFINITY;
  for (int offset = 16; offset > 0; offset >>= 1)
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
  return m;
}

// Block (i, h, b): probabilities of query i, then its context row.
// Dynamic shared memory: Tk floats (the row's weights) + Dh floats (q_i).
template <typename T>
__global__ void ForwardKernel(const T* q, const T* k, const T* v, const int* key_lengths,
                              Geometry g, float* probs, T* context) {
  extern __shared__ float shared[];
  float* weights = shared;
  float* qi = shared + g.tk;
  __shared__ float scratch[32];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int width = g.heads * g.head_dim;
  const int keys = key_lengths != nullptr ? key_lengths[b] : g.tk;
  const int visible = VisibleKeys(i, keys, g.causal);
  const T* q_row = q + (int64_t{b} * g.tq + i) * width + h * g.head_dim;
  const T* k_base = k + int64_t{b} * g.tk * width + h * g.head_dim;
  const T* v_base = v + int64_t{b} * g.tk * width + h * g.head_dim;
  const int64_t row_index = ((int64_t{b} * g.heads + h) * g.tq + i) * g.tk;
  for (int d = threadIdx.x; d < g.head_dim; d += blockDim.x) qi[d] = ToFloat(q_row[d]);
  __syncthreads();
  float local_max = -INFINITY;
  for (int j = threadIdx.x; j < visible; j += blockDim.x) {
    const T* kj = k_base + int64_t{j} * width;
    float s = 0.f;
    for (int d = 0; d < g.head_dim; ++d) s += qi[d] * ToFloat(kj[d]);
    s *= g.scale;
    weights[j] = s;
    local_max = fmaxf(local_max, s);
  }
  const float max = BlockMax(local_max, scratch);
  float local_sum = 0.f;
  for (int j = threadIdx.x; j < visible; j += blockDim.x) {
    const float e = __expf(weights[j] - max);
    weights[j] = e;
    local_sum += e;
  }
  const float inv = 1.f / BlockSum(local_sum, scratch);
  for (int j = threadIdx.x; j < g.tk; j += blockDim.x) {
    const float p = j < visible ? weights[j] * inv : 0.f;
    probs[row_index + j] = p;
    weights[j] = p * DropFactor(g, static_cast<uint64_t>(row_index + j));
  }
  __syncthreads();
  T* c_row = context + (int64_t{b} * g.tq + i) * width + h * g.head_dim;
  for (int d = threadIdx.x; d < g.head_dim; d += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j < visible; ++j) acc += weights[j] * ToFloat(v_base[int64_t{j} * width + d]);
    c_row[d] = FromFloat<T>(acc);
  }
}

// Block (i, h, b): dS of query i's row into `ds` (f32, [B, H, Tq, Tk]) and dq_i.
// dP_j = (dctx_i · v_j)·factor_j;  dS_j = P_j·(dP_j − Σ_l dP_l·P_l);  dq_i = scale·Σ_j dS_j·k_j.
template <typename T>
__global__ void RowGradKernel(const T* k, const T* v, const int* key_lengths, Geometry g,
                              const float* probs, const T* dcontext, float* ds, T* dq) {
  extern __shared__ float shared[];
  float* row = shared;         // Tk: dP, then dS
  float* dci = shared + g.tk;  // Dh: dcontext_i
  __shared__ float scratch[32];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int width = g.heads * g.head_dim;
  const int keys = key_lengths != nullptr ? key_lengths[b] : g.tk;
  const int visible = VisibleKeys(i, keys, g.causal);
  const int64_t q_offset = (int64_t{b} * g.tq + i) * width + h * g.head_dim;
  const T* k_base = k + int64_t{b} * g.tk * width + h * g.head_dim;
  const T* v_base = v + int64_t{b} * g.tk * width + h * g.head_dim;
  const int64_t row_index = ((int64_t{b} * g.heads + h) * g.tq + i) * g.tk;
  for (int d = threadIdx.x; d < g.head_dim; d += blockDim.x)
    dci[d] = ToFloat(dcontext[q_offset + d]);
  __syncthreads();
  float local_dot = 0.f;
  for (int j = threadIdx.x; j < visible; j += blockDim.x) {
    const T* vj = v_base + int64_t{j} * width;
    float dp = 0.f;
    for (int d = 0; d < g.head_dim; ++d) dp += dci[d] * ToFloat(vj[d]);
    dp *= DropFactor(g, static_cast<uint64_t>(row_index + j));
    row[j] = dp;
    local_dot += dp * probs[row_index + j];
  }
  const float dot = BlockSum(local_dot, scratch);
  for (int j = threadIdx.x; j < g.tk; j += blockDim.x) {
    const float s = j < visible ? probs[row_index + j] * (row[j] - dot) : 0.f;
    row[j] = s;
    ds[row_index + j] = s;
  }
  __syncthreads();
  for (int d = threadIdx.x; d < g.head_dim; d += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j < visible; ++j) acc += row[j] * ToFloat(k_base[int64_t{j} * width + d]);
    dq[q_offset + d] = FromFloat<T>(acc * g.scale);
  }
}

// Block (j, h, b): dv_j = Σ_i P̃_ij·dctx_i and dk_j = scale·Σ_i dS_ij·q_i, i in
// order; keys at or past the sequence's length get zero.
template <typename T>
__global__ void KeyGradKernel(const T* q, const int* key_lengths, Geometry g, const float* probs,
                              const float* ds, const T* dcontext, T* dk, T* dv) {
  const int j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int width = g.heads * g.head_dim;
  const int keys = key_lengths != nullptr ? key_lengths[b] : g.tk;
  const int64_t kv_offset = (int64_t{b} * g.tk + j) * width + h * g.head_dim;
  const int64_t pair_index = (int64_t{b} * g.heads + h) * g.tq * g.tk;
  const T* q_base = q + int64_t{b} * g.tq * width + h * g.head_dim;
  const T* dc_base = dcontext + int64_t{b} * g.tq * width + h * g.head_dim;
  // Queries that see key j: all, or i >= j under a causal mask.
  const int first = g.causal ? j : 0;
  for (int d = threadIdx.x; d < g.head_dim; d += blockDim.x) {
    float acc_v = 0.f, acc_k = 0.f;
    if (j < keys) {
      for (int i = first; i < g.tq; ++i) {
        const int64_t index = pair_index + int64_t{i} * g.tk + j;
        const float w = probs[index] * DropFactor(g, static_cast<uint64_t>(index));
        acc_v += w * ToFloat(dc_base[int64_t{i} * width + d]);
        acc_k += ds[index] * ToFloat(q_base[int64_t{i} * width + d]);
      }
    }
    dv[kv_offset + d] = FromFloat<T>(acc_v);
    dk[kv_offset + d] = FromFloat<T>(acc_k * g.scale);
  }
}

Geometry MakeGeometry(const Tensor& q, const Tensor& k, const AttentionOptions& options,
                      int64_t heads) {
  Geometry g;
  g.tq = static_cast<int>(q.dim(1));
  g.tk = static_cast<int>(k.dim(1));
  g.heads = static_cast<int>(heads);
  g.head_dim = static_cast<int>(q.dim(2) / heads);
  g.causal = options.causal;
  g.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(g.head_dim)));
  g.dropout = options.dropout;
  g.rng = StreamWordsOf(options.rng);
  return g;
}

// The validated host key lengths, on the device (undefined when unset).
absl::StatusOr<Tensor> DeviceKeyLengths(const AttentionOptions& options) {
  if (!options.key_lengths.defined()) return Tensor();
  if (options.key_lengths.device() == Device::kCuda) return options.key_lengths;
  return CopyToDevice(options.key_lengths, Device::kCuda);
}

const int* LengthsOrNull(const Tensor& t) {
  return t.defined() ? static_cast<const int*>(t.raw_data()) : nullptr;
}

// Shared memory for one row: Tk + Dh floats. Past the default 48 KiB the
// kernel must opt in; past the device's limit this version cannot run.
absl::Status CheckSharedMemory(const Geometry& g, size_t* bytes) {
  *bytes = sizeof(float) * (static_cast<size_t>(g.tk) + g.head_dim);
  // The 48 KiB hold the static scratch[32] of the reductions too.
  if (*bytes > 48 * 1024 - 32 * sizeof(float)) {
    return absl::UnimplementedError(absl::StrCat(
        "Attention on the GPU: Tk = ", g.tk, " needs ", *bytes,
        " bytes of shared memory per row; this kernel supports Tk up to about 12,000"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionOptions& options, int64_t heads,
                                        AttentionSaved* saved) {
  const Geometry g = MakeGeometry(q, k, options, heads);
  size_t shared_bytes = 0;
  PT_RETURN_IF_ERROR(CheckSharedMemory(g, &shared_bytes));
  PT_ASSIGN_OR_RETURN(const Tensor lengths, DeviceKeyLengths(options));
  const int64_t batch = q.dim(0);
  Tensor probs = Tensor::Empty({batch, heads, g.tq, g.tk}, DType::kF32, Device::kCuda);
  Tensor context = Tensor::Empty(q.shape(), q.dtype(), Device::kCuda);
  const dim3 grid(g.tq, g.heads, static_cast<unsigned>(batch));
  PT_RETURN_IF_ERROR(ForDType(q, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    ForwardKernel<T><<<grid, kThreads, shared_bytes, ComputeStream()>>>(
        Ptr<T>(q), Ptr<T>(k), Ptr<T>(v), LengthsOrNull(lengths), g, Ptr<float>(probs),
        Ptr<T>(context));
    return ::pipetrain::cuda::CheckLaunch("attention ForwardKernel");
  }));
  if (saved != nullptr) saved->probs = std::move(probs);
  return context;
}

absl::Status AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& options, int64_t heads,
                               const AttentionSaved& saved, const Tensor& dcontext, Tensor* dq,
                               Tensor* dk, Tensor* dv) {
  const Geometry g = MakeGeometry(q, k, options, heads);
  size_t shared_bytes = 0;
  PT_RETURN_IF_ERROR(CheckSharedMemory(g, &shared_bytes));
  PT_ASSIGN_OR_RETURN(const Tensor lengths, DeviceKeyLengths(options));
  const int64_t batch = q.dim(0);
  Tensor ds = Tensor::Empty(saved.probs.shape(), DType::kF32, Device::kCuda);
  Tensor grad_q = Tensor::Empty(q.shape(), q.dtype(), Device::kCuda);
  Tensor grad_k = Tensor::Empty(k.shape(), k.dtype(), Device::kCuda);
  Tensor grad_v = Tensor::Empty(v.shape(), v.dtype(), Device::kCuda);
  PT_RETURN_IF_ERROR(ForDType(q, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    RowGradKernel<T><<<dim3(g.tq, g.heads, static_cast<unsigned>(batch)), kThreads, shared_bytes,
                       ComputeStream()>>>(Ptr<T>(k), Ptr<T>(v), LengthsOrNull(lengths), g,
                                          Ptr<float>(saved.probs), Ptr<T>(dcontext), Ptr<float>(ds),
                                          Ptr<T>(grad_q));
    PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("attention RowGradKernel"));
    KeyGradKernel<T>
        <<<dim3(g.tk, g.heads, static_cast<unsigned>(batch)), kThreads, 0, ComputeStream()>>>(
            Ptr<T>(q), LengthsOrNull(lengths), g, Ptr<float>(saved.probs), Ptr<float>(ds),
            Ptr<T>(dcontext), Ptr<T>(grad_k), Ptr<T>(grad_v));
    return ::pipetrain::cuda::CheckLaunch("attention KeyGradKernel");
  }));
  *dq = std::move(grad_q);
  *dk = std::move(grad_k);
  *dv = std::move(grad_v);
  return absl::OkStatus();
}

}  // namespace pipetrain::ops::cuda
