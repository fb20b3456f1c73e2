// The transfer functions of core/device.h that every build shares: host and
// emulated-device memory are both the process's own, so copies between them
// are memcpy; anything that touches CUDA memory goes to the backend
// (core/cuda/device_memory.cu, or the stub of a build without CUDA).
#include "core/device.h"

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/device_storage.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

std::atomic<int64_t> device_to_host_copies{0};
std::atomic<int64_t> device_to_host_bytes{0};
std::atomic<int64_t> host_to_device_copies{0};
std::atomic<int64_t> host_to_device_bytes{0};

}  // namespace

namespace device_storage {
void CountDeviceToHost(size_t bytes) {
  device_to_host_copies.fetch_add(1, std::memory_order_relaxed);
  device_to_host_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
}
void CountHostToDevice(size_t bytes) {
  host_to_device_copies.fetch_add(1, std::memory_order_relaxed);
  host_to_device_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
}
}  // namespace device_storage

CopyCounts DeviceToHostCopies() {
  return {device_to_host_copies.load(std::memory_order_relaxed),
          device_to_host_bytes.load(std::memory_order_relaxed)};
}

CopyCounts HostToDeviceCopies() {
  return {host_to_device_copies.load(std::memory_order_relaxed),
          host_to_device_bytes.load(std::memory_order_relaxed)};
}

absl::StatusOr<Tensor> CopyToDevice(const Tensor& t, Device device) {
  if (!t.defined()) return absl::InvalidArgumentError("CopyToDevice: undefined tensor");
  // Fail before allocating: a CUDA tensor on a machine without a GPU would
  // end the process instead of returning the runtime's reason.
  if (device == Device::kCuda) PT_RETURN_IF_ERROR(device_storage::CudaAvailable());
  Tensor out = Tensor::Empty(t.shape(), t.dtype(), device);
  PT_RETURN_IF_ERROR(CopyTensor(t, out));
  return out;
}

absl::Status CopyTensor(const Tensor& src, Tensor& dst) {
  if (src.shape() != dst.shape() || src.dtype() != dst.dtype()) {
    return absl::InvalidArgumentError(absl::StrCat("CopyTensor: source ", src.DebugString(),
                                                   " and destination ", dst.DebugString(),
                                                   " differ in shape or dtype"));
  }
  if (dst.device() == Device::kCpu && src.device() != Device::kCpu) {
    device_storage::CountDeviceToHost(src.nbytes());
  }
  if (src.device() == Device::kCpu && dst.device() != Device::kCpu) {
    device_storage::CountHostToDevice(src.nbytes());
  }
  if (src.nbytes() == 0) return absl::OkStatus();
  if (src.device() == Device::kCuda || dst.device() == Device::kCuda) {
    return device_storage::CudaCopy(dst.device_ptr(), dst.device(), src.device_ptr(), src.device(),
                                    src.nbytes());
  }
  std::memcpy(dst.device_ptr(), src.device_ptr(), src.nbytes());
  return absl::OkStatus();
}

absl::Status ConvertInto(const Tensor& src, Tensor& dst) {
  if (src.shape() != dst.shape() || src.device() != dst.device()) {
    return absl::InvalidArgumentError(absl::StrCat("ConvertInto: source ", src.DebugString(),
                                                   " and destination ", dst.DebugString(),
                                                   " differ in shape or device"));
  }
  if (src.device() == Device::kCuda) {
    device_storage::Convert(src.device_ptr(), src.dtype(), dst.device_ptr(), dst.dtype(),
                            src.numel());
    return absl::OkStatus();
  }
  // A conversion kernel on the host or on the emulated device (Tensor::To).
  const Tensor converted = src.To(dst.dtype());
  if (converted.nbytes() > 0) {
    std::memcpy(dst.device_ptr(), converted.device_ptr(), converted.nbytes());
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
