// Device storage for Tensor (core/device_storage.h) and the public transfer
// and memory functions of core/device.h, on the CUDA runtime.
#include <cuda_bf16.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/kernel_utils.cuh"
#include "core/device.h"
#include "core/device_storage.h"

namespace pipetrain {
namespace {

[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "pipetrain: %s\n", status.ToString().c_str());
  std::abort();
}

void DieIf(cudaError_t err, const char* what) {
  if (err != cudaSuccess) Die(cuda::CudaError(err, what));
}

cudaMemcpyKind KindOf(Device dst, Device src) {
  if (dst == Device::kCuda)
    return src == Device::kCuda ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice;
  return src == Device::kCuda ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost;
}

template <typename T>
__device__ __forceinline__ T FromDouble(double v);
template <>
__device__ __forceinline__ float FromDouble<float>(double v) {
  return static_cast<float>(v);
}
template <>
__device__ __forceinline__ double FromDouble<double>(double v) {
  return v;
}
template <>
__device__ __forceinline__ int32_t FromDouble<int32_t>(double v) {
  return static_cast<int32_t>(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromDouble<__nv_bfloat16>(double v) {
  return __float2bfloat16_rn(static_cast<float>(v));
}

template <typename T>
__device__ __forceinline__ double ToDouble(T v) {
  return static_cast<double>(v);
}
template <>
__device__ __forceinline__ double ToDouble<__nv_bfloat16>(__nv_bfloat16 v) {
  return static_cast<double>(__bfloat162float(v));
}

template <typename T>
__global__ void FillKernel(T* out, int64_t n, double value) {
  const T v = FromDouble<T>(value);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = v;
  }
}

template <typename S, typename D>
__global__ void ConvertKernel(const S* in, D* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = FromDouble<D>(ToDouble<S>(in[i]));
  }
}

template <typename S>
void ConvertFrom(const S* src, void* dst, DType dst_dtype, int64_t n, cudaStream_t stream) {
  const unsigned grid = cuda::GridFor(n, 256);
  switch (dst_dtype) {
    case DType::kF32:
      ConvertKernel<<<grid, 256, 0, stream>>>(src, static_cast<float*>(dst), n);
      break;
    case DType::kF64:
      ConvertKernel<<<grid, 256, 0, stream>>>(src, static_cast<double*>(dst), n);
      break;
    case DType::kBF16:
      ConvertKernel<<<grid, 256, 0, stream>>>(src, static_cast<__nv_bfloat16*>(dst), n);
      break;
    case DType::kI32:
      ConvertKernel<<<grid, 256, 0, stream>>>(src, static_cast<int32_t*>(dst), n);
      break;
  }
}

}  // namespace

namespace device_storage {

void* Allocate(size_t bytes) {
  cuda::Context& ctx = cuda::ContextOrDie();
  absl::StatusOr<void*> ptr = ctx.allocator->Allocate(bytes);
  if (!ptr.ok()) Die(ptr.status());
  return *ptr;
}

void Free(void* ptr) { cuda::ContextOrDie().allocator->Free(ptr); }

void Copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t stream = cuda::ComputeStream();
  DieIf(cudaMemcpyAsync(dst, src, bytes, KindOf(dst_device, src_device), stream),
        "cudaMemcpyAsync");
  // The host may read (or free) host memory as soon as this returns.
  if (dst_device == Device::kCpu || src_device == Device::kCpu) {
    DieIf(cudaStreamSynchronize(stream), "cudaStreamSynchronize after a host copy");
  }
}

void SetZero(void* ptr, size_t bytes) {
  if (bytes == 0) return;
  DieIf(cudaMemsetAsync(ptr, 0, bytes, cuda::ComputeStream()), "cudaMemsetAsync");
}

void Fill(void* ptr, DType dtype, int64_t n, double value) {
  if (n == 0) return;
  cudaStream_t stream = cuda::ComputeStream();
  const unsigned grid = cuda::GridFor(n, 256);
  switch (dtype) {
    case DType::kF32:
      FillKernel<<<grid, 256, 0, stream>>>(static_cast<float*>(ptr), n, value);
      break;
    case DType::kF64:
      FillKernel<<<grid, 256, 0, stream>>>(static_cast<double*>(ptr), n, value);
      break;
    case DType::kBF16:
      FillKernel<<<grid, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(ptr), n, value);
      break;
    case DType::kI32:
      FillKernel<<<grid, 256, 0, stream>>>(static_cast<int32_t*>(ptr), n, value);
      break;
  }
  DieIf(cudaGetLastError(), "launching FillKernel");
}

void Convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n) {
  if (n == 0) return;
  cudaStream_t stream = cuda::ComputeStream();
  switch (src_dtype) {
    case DType::kF32:
      ConvertFrom(static_cast<const float*>(src), dst, dst_dtype, n, stream);
      break;
    case DType::kF64:
      ConvertFrom(static_cast<const double*>(src), dst, dst_dtype, n, stream);
      break;
    case DType::kBF16:
      ConvertFrom(static_cast<const __nv_bfloat16*>(src), dst, dst_dtype, n, stream);
      break;
    case DType::kI32:
      ConvertFrom(static_cast<const int32_t*>(src), dst, dst_dtype, n, stream);
      break;
  }
  DieIf(cudaGetLastError(), "launching ConvertKernel");
}

}  // namespace device_storage

absl::Status UseCudaDevice(int ordinal) { return cuda::SelectDevice(ordinal); }

absl::StatusOr<int> CurrentCudaDevice() {
  absl::StatusOr<cuda::Context*> ctx = cuda::GetContext();
  if (!ctx.ok()) return ctx.status();
  return (*ctx)->device;
}

namespace device_storage {

absl::Status CudaAvailable() { return cuda::GetContext().status(); }

absl::Status CudaCopy(void* dst, Device dst_device, const void* src, Device src_device,
                      size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  cudaStream_t stream = cuda::ComputeStream();
  PT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, KindOf(dst_device, src_device), stream),
                          "CopyTensor");
  if (src_device != Device::kCuda || dst_device != Device::kCuda) {
    PT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream), "CopyTensor (waiting for the copy)");
  }
  return absl::OkStatus();
}

}  // namespace device_storage

absl::Status SynchronizeDevice() {
  absl::StatusOr<cuda::Context*> ctx = cuda::GetContext();
  if (!ctx.ok()) return ctx.status();
  PT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize((*ctx)->stream),
                          absl::StrCat("work queued on ", (*ctx)->device_name));
  return absl::OkStatus();
}

AllocatorStats DeviceMemoryStats() {
  absl::StatusOr<cuda::Context*> ctx = cuda::GetContext();
  return ctx.ok() ? (*ctx)->allocator->stats() : AllocatorStats{};
}

void ResetDevicePeakMemory() {
  absl::StatusOr<cuda::Context*> ctx = cuda::GetContext();
  if (ctx.ok()) (*ctx)->allocator->ResetPeak();
}

void EmptyDeviceCache() {
  absl::StatusOr<cuda::Context*> ctx = cuda::GetContext();
  if (ctx.ok()) (*ctx)->allocator->EmptyCache();
}

}  // namespace pipetrain
