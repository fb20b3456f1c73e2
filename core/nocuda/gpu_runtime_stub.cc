#include "core/gpu_runtime.h"

namespace pipetrain {

bool BuiltWithCuda() { return false; }

int CudaDeviceCount(std::string* why) {
  if (why != nullptr) *why = "built without CUDA (-DPIPETRAIN_CUDA=OFF)";
  return 0;
}

}  // namespace pipetrain
