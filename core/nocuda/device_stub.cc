// core/device.h and core/device_storage.h for a build without CUDA: nothing
// can reach a GPU, and Tensor never asks for device storage (Storage refuses
// Device::kCuda before calling here).
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

absl::StatusOr<Tensor> CopyToDevice(const Tensor& t, Device device) {
  if (device == Device::kCuda || t.device() == Device::kCuda) return NotBuilt("CopyToDevice");
  return t.Clone();
}

absl::Status CopyTensor(const Tensor& src, Tensor& dst) {
  if (src.device() == Device::kCuda || dst.device() == Device::kCuda) {
    return NotBuilt("CopyTensor");
  }
  if (src.shape() != dst.shape() || src.dtype() != dst.dtype()) {
    return absl::InvalidArgumentError(
        "CopyTensor: source and destination differ in shape or dtype");
  }
  if (src.nbytes() > 0) std::memcpy(dst.raw_data(), src.raw_data(), src.nbytes());
  return absl::OkStatus();
}

absl::Status ConvertInto(const Tensor& src, Tensor& dst) {
  if (src.shape() != dst.shape() || src.device() != Device::kCpu || dst.device() != Device::kCpu) {
    return absl::InvalidArgumentError("ConvertInto: tensors differ in shape or are not on the CPU");
  }
  const Tensor converted = src.To(dst.dtype());
  if (converted.nbytes() > 0) std::memcpy(dst.raw_data(), converted.raw_data(), converted.nbytes());
  return absl::OkStatus();
}

absl::Status SynchronizeDevice() { return absl::OkStatus(); }
AllocatorStats DeviceMemoryStats() { return {}; }
void ResetDevicePeakMemory() {}
void EmptyDeviceCache() {}

}  // namespace pipetrain
