// core/device.h and core/device_storage.h for a build without CUDA: nothing
// can reach a GPU, so no CUDA tensor can exist (Storage for Device::kCuda
// ends here with a message). The emulated device needs no CUDA at all.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/device.h"
#include "core/device_storage.h"

namespace pipetrain {
namespace {

absl::Status NotBuilt(const char* what) {
  return absl::FailedPreconditionError(
      std::string(what) + ": this pipetrain was built without CUDA (-DPIPETRAIN_CUDA=OFF)");
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "pipetrain: %s needs the CUDA backend, which this build lacks\n", what);
  std::abort();
}

}  // namespace

namespace device_storage {
void* Allocate(size_t) { Die("device memory"); }
void Free(void*) { Die("device memory"); }
void Copy(void*, Device, const void*, Device, size_t) { Die("a device copy"); }
void SetZero(void*, size_t) { Die("a device memset"); }
void Fill(void*, DType, int64_t, double) { Die("a device fill"); }
void Convert(const void*, DType, void*, DType, int64_t) { Die("a device conversion"); }
}  // namespace device_storage

absl::Status UseCudaDevice(int) { return NotBuilt("UseCudaDevice"); }
absl::StatusOr<int> CurrentCudaDevice() { return NotBuilt("CurrentCudaDevice"); }

namespace device_storage {
absl::Status CudaAvailable() { return NotBuilt("a CUDA device"); }
absl::Status CudaCopy(void*, Device, const void*, Device, size_t) { return NotBuilt("CopyTensor"); }
}  // namespace device_storage

absl::Status SynchronizeDevice() { return absl::OkStatus(); }
AllocatorStats DeviceMemoryStats() { return {}; }
void ResetDevicePeakMemory() {}
void EmptyDeviceCache() {}

}  // namespace pipetrain
