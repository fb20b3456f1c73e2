// The process's CUDA state, for the backend's own files only (core/cuda,
// core/ops/*_cuda.cu, parallel/nccl_*): the selected device, the compute
// stream every kernel runs on, the cuBLASLt handle and its workspace, and the
// caching allocator. Created on first use.
#ifndef PIPETRAIN_CORE_CUDA_CUDA_CONTEXT_H_
#define PIPETRAIN_CORE_CUDA_CUDA_CONTEXT_H_

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/caching_allocator.h"

namespace pipetrain::cuda {

struct Context {
  int device = 0;
  std::string device_name;  // "cuda:0 (NVIDIA H100 80GB HBM3)"
  cudaStream_t stream = nullptr;
  cublasLtHandle_t blas_lt = nullptr;
  void* blas_workspace = nullptr;
  size_t blas_workspace_bytes = 0;
  CachingAllocator* allocator = nullptr;
};

// The context, created on the first call (on the default device unless
// SelectDevice ran first). A failure to create it is returned every time.
absl::StatusOr<Context*> GetContext();
// Like GetContext, for callers that cannot return a Status: ends the process
// with the error instead.
Context& ContextOrDie();
// Fails once the context exists on another device.
absl::Status SelectDevice(int ordinal);

inline cudaStream_t ComputeStream() { return ContextOrDie().stream; }

// "what: <CUDA error name>: <description> (cuda:N)" as an Internal status.
absl::Status CudaError(cudaError_t err, absl::string_view what);
absl::Status BlasError(cublasStatus_t status, absl::string_view what);
// The launch error of the last kernel, if any (does not wait for it).
absl::Status CheckLaunch(absl::string_view kernel);

}  // namespace pipetrain::cuda

#define PT_CUDA_RETURN_IF_ERROR(call, what)                                                   \
  do {                                                                                        \
    const cudaError_t pt_cuda_err_ = (call);                                                  \
    if (pt_cuda_err_ != cudaSuccess) return ::pipetrain::cuda::CudaError(pt_cuda_err_, what); \
  } while (0)

#define PT_BLAS_RETURN_IF_ERROR(call, what)                   \
  do {                                                        \
    const cublasStatus_t pt_blas_st_ = (call);                \
    if (pt_blas_st_ != CUBLAS_STATUS_SUCCESS)                 \
      return ::pipetrain::cuda::BlasError(pt_blas_st_, what); \
  } while (0)

#endif  // PIPETRAIN_CORE_CUDA_CUDA_CONTEXT_H_
