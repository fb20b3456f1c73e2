// The device half of Tensor's storage and of its whole-tensor methods (Zero,
// Fill, Clone, To, At). Tensor cannot return a Status from these, so a CUDA
// failure here ends the process with a message naming the call and the device
// (after such an error the CUDA context is unusable anyway). Ops report their
// errors as absl::Status instead. Only core/tensor.cc includes this header.
#ifndef PIPETRAIN_CORE_DEVICE_STORAGE_H_
#define PIPETRAIN_CORE_DEVICE_STORAGE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace pipetrain::device_storage {

void* Allocate(size_t bytes);
void Free(void* ptr);
// Copies between any two places; `*_device` says where each pointer lives.
// Waits when the destination is host memory.
void Copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void SetZero(void* ptr, size_t bytes);
void Fill(void* ptr, DType dtype, int64_t n, double value);
// Elementwise conversion between f32, bf16, f64 and i32 on the device
// (f64 → bf16 goes through f32, as on the host).
void Convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n);

// OK when a CUDA device can be used (else the runtime's reason).
absl::Status CudaAvailable();
// Copies between any two places of which at least one is CUDA memory; waits
// when either side is host memory. Returns CUDA errors as a Status.
absl::Status CudaCopy(void* dst, Device dst_device, const void* src, Device src_device,
                      size_t bytes);

// Counts a copy of `bytes` from device memory (CUDA or emulated) to the host,
// for DeviceToHostCopies() (core/device.h).
void CountDeviceToHost(size_t bytes);
// The same for a copy from the host to device memory.
void CountHostToDevice(size_t bytes);

}  // namespace pipetrain::device_storage

#endif  // PIPETRAIN_CORE_DEVICE_STORAGE_H_
