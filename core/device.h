// Device memory, transfers and synchronisation, for code that must not see
// CUDA types. A CPU-only build links stubs: every call that needs a GPU
// returns FailedPrecondition ("built without CUDA"), and no device tensor can
// be created.
//
// One process drives one GPU. Unless UseCudaDevice picks one, the first device
// tensor selects the GPU of this process's node-local rank (Open MPI's
// OMPI_COMM_WORLD_LOCAL_RANK, else Slurm's SLURM_LOCALID, else 0) modulo the
// number of GPUs. Every kernel of the process runs on one compute stream, in
// issue order; host code only waits at copies to the host and at
// SynchronizeDevice.
#ifndef PIPETRAIN_CORE_DEVICE_H_
#define PIPETRAIN_CORE_DEVICE_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/caching_allocator.h"
#include "core/tensor.h"

namespace pipetrain {

// Chooses this process's GPU; must come before the first device tensor.
absl::Status UseCudaDevice(int ordinal);
// The GPU this process uses (selecting the default one if none is yet).
absl::StatusOr<int> CurrentCudaDevice();

// Host and device memory meet only here (and in Tensor::CopyTo): for the
// emulated device (host memory treated as a GPU's) these are the only doors.

// A copy of `t` on `device`, same dtype and shape.
absl::StatusOr<Tensor> CopyToDevice(const Tensor& t, Device device);
// dst ← src; same shape and dtype, any pair of devices.
absl::Status CopyTensor(const Tensor& src, Tensor& dst);

// dst ← src converted to dst's dtype (f32, f64, bf16, i32); same shape, both
// on the same device. Writes into dst's storage, so views of it see the values.
absl::Status ConvertInto(const Tensor& src, Tensor& dst);

// How many copies crossed between host and device memory (CUDA or emulated)
// since the process started, and their bytes. A copy to the host makes the
// host wait for the device, so the training step keeps them few and
// independent of depth (a test counts them on the emulated device).
struct CopyCounts {
  int64_t copies = 0;
  int64_t bytes = 0;
};
CopyCounts DeviceToHostCopies();  // reads of device memory
CopyCounts HostToDeviceCopies();  // uploads

// Waits for every queued kernel and copy; returns the first asynchronous
// error a kernel raised (with the name of the device).
absl::Status SynchronizeDevice();

// The caching allocator's counters (all zero on a CPU-only build).
AllocatorStats DeviceMemoryStats();
void ResetDevicePeakMemory();
// Returns cached blocks to the driver (e.g. before a large decode).
void EmptyDeviceCache();

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DEVICE_H_
