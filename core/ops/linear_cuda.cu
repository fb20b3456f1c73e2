// CUDA linear layer: the GEMMs go to cuBLASLt with fp32 accumulation
// (CUBLAS_COMPUTE_32F, which for f32 inputs is strict fp32, not TF32, so f32
// results stay close to the CPU's). The forward fuses the bias through the
// BIAS epilogue; db is a deterministic two-stage column sum of our own.
//
// cuBLASLt is column-major. A row-major [r, c] matrix is the same memory as a
// column-major [c, r] one, so each row-major product is computed as its
// transpose:
//   forward   y = x·wᵀ  ⇔  yᵀ [out, rows] = w'ᵀ·xᵀ  (w' = column-major [in, out])
//   input     dx = dy·w  ⇔  dxᵀ [in, rows] = w'·dyᵀ
//   weight    dw += dyᵀ·x ⇔  dwᵀ [in, out] += xᵀ·dy'ᵀ  (dy' = column-major [out, rows])
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/ops/linear_cuda.h"
#include "core/status_macros.h"

namespace pipetrain::ops::cuda {
namespace {

using ::pipetrain::cuda::ComputeStream;
using ::pipetrain::cuda::ToFloat;

// db's column sums: rows in chunks of kBiasRowsPerChunk, one thread per column.
constexpr int kBiasRowsPerChunk = 64;
constexpr int kBiasColumns = 128;

cudaDataType_t BlasType(DType dtype) { return dtype == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F; }

// Owners of the cuBLASLt descriptors, so every early return frees them.
struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
  void operator()(cublasLtMatrixLayoutOpaque_t* l) const { cublasLtMatrixLayoutDestroy(l); }
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using Layout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, DescDeleter>;
using Preference = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, DescDeleter>;

// One column-major operand: `rows` × `cols` as stored (before any transpose).
struct Operand {
  const void* data;
  cudaDataType_t type;
  int64_t rows, cols;
};

absl::StatusOr<Layout> MakeLayout(const Operand& m) {
  cublasLtMatrixLayout_t raw = nullptr;
  PT_BLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&raw, m.type, static_cast<uint64_t>(m.rows),
                                                     static_cast<uint64_t>(m.cols), m.rows),
                          "cublasLtMatrixLayoutCreate");
  return Layout(raw);
}

// D = alpha·op(A)·op(B) + beta·D, column-major, D of shape [m, n] (m = d.rows).
// `bias` (length m, D's dtype) is added through the BIAS epilogue when not null.
absl::Status Matmul(bool trans_a, const Operand& a, bool trans_b, const Operand& b, float beta,
                    void* d_data, cudaDataType_t d_type, int64_t m, int64_t n, const void* bias) {
  PT_ASSIGN_OR_RETURN(::pipetrain::cuda::Context * ctx, ::pipetrain::cuda::GetContext());
  cublasLtMatmulDesc_t raw_op = nullptr;
  PT_BLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&raw_op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                          "cublasLtMatmulDescCreate");
  MatmulDesc op(raw_op);
  const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(op.get(), CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
      "cublasLtMatmulDescSetAttribute(TRANSA)");
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(op.get(), CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
      "cublasLtMatmulDescSetAttribute(TRANSB)");
  if (bias != nullptr) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    PT_BLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(op.get(), CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                           &epilogue, sizeof(epilogue)),
                            "cublasLtMatmulDescSetAttribute(EPILOGUE)");
    PT_BLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
                                op.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
                            "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
    PT_BLAS_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(op.get(), CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &d_type,
                                       sizeof(d_type)),
        "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)");
  }
  PT_ASSIGN_OR_RETURN(Layout a_layout, MakeLayout(a));
  PT_ASSIGN_OR_RETURN(Layout b_layout, MakeLayout(b));
  PT_ASSIGN_OR_RETURN(Layout d_layout, MakeLayout(Operand{d_data, d_type, m, n}));

  cublasLtMatmulPreference_t raw_pref = nullptr;
  PT_BLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&raw_pref),
                          "cublasLtMatmulPreferenceCreate");
  Preference pref(raw_pref);
  const size_t workspace = ctx->blas_workspace_bytes;
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspace, sizeof(workspace)),
      "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  // The heuristic assumes 256-byte aligned operands unless told otherwise;
  // views into flat parameter buffers (ParameterStore) may be aligned to as
  // little as an element, and an algorithm chosen for 256 bytes then fails.
  const auto alignment = [](const void* ptr) -> uint32_t {
    const uintptr_t address = reinterpret_cast<uintptr_t>(ptr);
    uint32_t bytes = 256;
    while (bytes > 1 && address % bytes != 0) bytes >>= 1;
    return bytes;
  };
  const uint32_t align_a = alignment(a.data), align_b = alignment(b.data);
  const uint32_t align_d = alignment(d_data);
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                           &align_a, sizeof(align_a)),
      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_A_BYTES)");
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                           &align_b, sizeof(align_b)),
      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_B_BYTES)");
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                           &align_d, sizeof(align_d)),
      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_C_BYTES)");
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                           &align_d, sizeof(align_d)),
      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_D_BYTES)");
  // Prefer split-K partial sums in the compute type (f32): the in-place and
  // output-type schemes round them to bf16 for bf16 outputs. Should that
  // filter leave nothing, any scheme beats failing.
  cublasLtMatmulHeuristicResult_t heuristic = {};
  int found = 0;
  for (const uint32_t reduction : {uint32_t{CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE},
                                   uint32_t{CUBLASLT_REDUCTION_SCHEME_MASK}}) {
    PT_BLAS_RETURN_IF_ERROR(
        cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                             &reduction, sizeof(reduction)),
        "cublasLtMatmulPreferenceSetAttribute(REDUCTION_SCHEME_MASK)");
    // "Not supported" is how it may say that it found nothing.
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        ctx->blas_lt, op.get(), a_layout.get(), b_layout.get(), d_layout.get(), d_layout.get(),
        pref.get(), 1, &heuristic, &found);
    if (st != CUBLAS_STATUS_NOT_SUPPORTED) {
      PT_BLAS_RETURN_IF_ERROR(st, "cublasLtMatmulAlgoGetHeuristic");
      if (found > 0) break;
    }
    found = 0;
  }
  if (found == 0) {
    return absl::InternalError(absl::StrCat("cuBLASLt has no algorithm for the ", m, "x", n,
                                            " matmul (", d_type == CUDA_R_16BF ? "bf16" : "f32",
                                            " output)"));
  }
  const float alpha = 1.f;
  PT_BLAS_RETURN_IF_ERROR(
      cublasLtMatmul(ctx->blas_lt, op.get(), &alpha, a.data, a_layout.get(), b.data, b_layout.get(),
                     &beta, d_data, d_layout.get(), d_data, d_layout.get(), &heuristic.algo,
                     ctx->blas_workspace, workspace, ctx->stream),
      "cublasLtMatmul");
  return absl::OkStatus();
}

// Stage 1: partial[chunk, j] = Σ over the chunk's rows of dy[r, j].
template <typename T>
__global__ void BiasPartialKernel(const T* dy, int64_t rows, int64_t out, float* partial) {
  const int64_t j = int64_t{blockIdx.x} * kBiasColumns + threadIdx.x;
  if (j >= out) return;
  const int64_t r0 = int64_t{blockIdx.y} * kBiasRowsPerChunk;
  const int64_t r1 = min(rows, r0 + kBiasRowsPerChunk);
  float acc = 0.f;
  for (int64_t r = r0; r < r1; ++r) acc += ToFloat(dy[r * out + j]);
  partial[int64_t{blockIdx.y} * out + j] = acc;
}

// Stage 2: db[j] += Σ_chunks partial[chunk, j], chunks in order.
__global__ void BiasSumChunksKernel(const float* partial, int64_t chunks, int64_t out, float* db) {
  const int64_t j = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (j >= out) return;
  float acc = 0.f;
  for (int64_t c = 0; c < chunks; ++c) acc += partial[c * out + j];
  db[j] += acc;
}

// y[r, j] += b[j] for a row-major y [rows, out]: the bias when the BIAS
// epilogue cannot take it (cuBLASLt's epilogue needs a 16-byte aligned bias,
// and a bias viewed out of a flat parameter buffer may not be).
template <typename T>
__global__ void AddBiasKernel(const T* b, int64_t rows, int64_t out, T* y) {
  const int64_t n = rows * out;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] = ::pipetrain::cuda::FromFloat<T>(ToFloat(y[i]) + ToFloat(b[i % out]));
  }
}

Shape WithLastDim(const Shape& shape, int64_t last) {
  Shape s = shape;
  s.back() = last;
  return s;
}

}  // namespace

absl::StatusOr<Tensor> LinearForward(const Tensor& x, const Tensor& w, const Tensor* b) {
  const int64_t out = w.dim(0), in = w.dim(1), rows = x.numel() / in;
  Tensor y = Tensor::Empty(WithLastDim(x.shape(), out), x.dtype(), Device::kCuda);
  if (rows == 0) return y;
  const cudaDataType_t type = BlasType(x.dtype());
  const bool fuse_bias = b != nullptr && reinterpret_cast<uintptr_t>(b->raw_data()) % 16 == 0;
  PT_RETURN_IF_ERROR(Matmul(/*trans_a=*/true, Operand{w.raw_data(), type, in, out},
                            /*trans_b=*/false, Operand{x.raw_data(), type, in, rows},
                            /*beta=*/0.f, y.raw_data(), type, out, rows,
                            fuse_bias ? b->raw_data() : nullptr));
  if (b != nullptr && !fuse_bias) {
    const unsigned grid = ::pipetrain::cuda::GridFor(rows * out, 256);
    if (x.dtype() == DType::kBF16) {
      AddBiasKernel<<<grid, 256, 0, ComputeStream()>>>(
          static_cast<const __nv_bfloat16*>(b->raw_data()), rows, out,
          static_cast<__nv_bfloat16*>(y.raw_data()));
    } else {
      AddBiasKernel<<<grid, 256, 0, ComputeStream()>>>(
          static_cast<const float*>(b->raw_data()), rows, out, static_cast<float*>(y.raw_data()));
    }
    PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("AddBiasKernel"));
  }
  return y;
}

absl::StatusOr<Tensor> LinearBackwardInput(const Tensor& dy, const Tensor& w) {
  const int64_t out = w.dim(0), in = w.dim(1), rows = dy.numel() / out;
  Tensor dx = Tensor::Empty(WithLastDim(dy.shape(), in), dy.dtype(), Device::kCuda);
  if (rows == 0) return dx;
  const cudaDataType_t type = BlasType(dy.dtype());
  PT_RETURN_IF_ERROR(Matmul(/*trans_a=*/false, Operand{w.raw_data(), type, in, out},
                            /*trans_b=*/false, Operand{dy.raw_data(), type, out, rows},
                            /*beta=*/0.f, dx.raw_data(), type, in, rows, nullptr));
  return dx;
}

absl::Status LinearBackwardWeight(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* db) {
  const int64_t out = dw.dim(0), in = dw.dim(1), rows = x.numel() / in;
  if (rows == 0) return absl::OkStatus();
  const cudaDataType_t type = BlasType(x.dtype());
  // beta = 1: gradients accumulate across micro-batches, in f32 whatever x is.
  PT_RETURN_IF_ERROR(Matmul(/*trans_a=*/false, Operand{x.raw_data(), type, in, rows},
                            /*trans_b=*/true, Operand{dy.raw_data(), type, out, rows},
                            /*beta=*/1.f, dw.raw_data(), CUDA_R_32F, in, out, nullptr));
  if (db == nullptr) return absl::OkStatus();
  const int64_t chunks = (rows + kBiasRowsPerChunk - 1) / kBiasRowsPerChunk;
  Tensor partial = Tensor::Empty({chunks, out}, DType::kF32, Device::kCuda);
  float* partial_data = static_cast<float*>(partial.raw_data());
  const dim3 grid(static_cast<unsigned>((out + kBiasColumns - 1) / kBiasColumns),
                  static_cast<unsigned>(chunks));
  if (dy.dtype() == DType::kBF16) {
    BiasPartialKernel<<<grid, kBiasColumns, 0, ComputeStream()>>>(
        static_cast<const __nv_bfloat16*>(dy.raw_data()), rows, out, partial_data);
  } else {
    BiasPartialKernel<<<grid, kBiasColumns, 0, ComputeStream()>>>(
        static_cast<const float*>(dy.raw_data()), rows, out, partial_data);
  }
  PT_RETURN_IF_ERROR(::pipetrain::cuda::CheckLaunch("BiasPartialKernel"));
  BiasSumChunksKernel<<<static_cast<unsigned>((out + 255) / 256), 256, 0, ComputeStream()>>>(
      partial_data, chunks, out, static_cast<float*>(db->raw_data()));
  return ::pipetrain::cuda::CheckLaunch("BiasSumChunksKernel");
}

}  // namespace pipetrain::ops::cuda
