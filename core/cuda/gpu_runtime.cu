#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <nccl.h>

#include "core/gpu_runtime.h"

namespace pipetrain {

bool BuiltWithCuda() { return true; }

int CudaDeviceCount(std::string* why) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why != nullptr) *why = cudaGetErrorString(err);
    return 0;
  }
  if (count == 0 && why != nullptr) *why = "no CUDA device";
  // The libraries the backend uses must at least be loadable; their versions
  // are logged by `pipetrain version`.
  (void)cudnnGetVersion();
  (void)cublasLtGetVersion();
  return count;
}

}  // namespace pipetrain
