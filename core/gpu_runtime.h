// What the process can see of GPUs, without exposing any CUDA type.
// A CPU-only build (PIPETRAIN_CUDA=OFF) links a stub that reports none.
#ifndef PIPETRAIN_CORE_GPU_RUNTIME_H_
#define PIPETRAIN_CORE_GPU_RUNTIME_H_

#include <string>

namespace pipetrain {

// True when this binary was built with the CUDA backend.
bool BuiltWithCuda();
// Number of usable CUDA devices; 0 on a CPU-only build or a machine without
// a driver or GPU. Never fails: the reason for 0 goes to `why` when given.
int CudaDeviceCount(std::string* why = nullptr);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_GPU_RUNTIME_H_
