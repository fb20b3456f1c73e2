// Tensor: a contiguous n-d array with a dtype and a device, backed by shared
// storage. No autograd: every op in core/ops has an explicit backward.
//
// Tensors are always contiguous (row-major). Several tensors may alias one
// storage at different offsets; that is how layers hold views into a stage's
// flat parameter buffer (DESIGN.md decision 3).
#ifndef PIPETRAIN_CORE_TENSOR_H_
#define PIPETRAIN_CORE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace pipetrain {

enum class DType : uint8_t { kF32, kF64, kBF16, kI32 };
// kEmulated: tensors in host memory that behave exactly as GPU memory (see
// EmulatedKernelScope below and DESIGN.md decision 10). It lets every line
// above the kernels run as it would on a GPU, on a machine without one.
enum class Device : uint8_t { kCpu, kCuda, kEmulated };

size_t DTypeSize(DType dtype);
const char* DTypeName(DType dtype);
const char* DeviceName(Device device);
// The device named `name` ("cpu", "cuda", "emulated"); false when unknown.
bool ParseDevice(const std::string& name, Device* device);

using Shape = std::vector<int64_t>;

// bfloat16 as stored: the upper 16 bits of an IEEE float. Conversion rounds to
// nearest even (as cuBLAS and PyTorch do); NaN stays NaN.
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t bits);
int64_t NumElements(const Shape& shape);
std::string ShapeString(const Shape& shape);

// Owns one allocation. CPU (and emulated-device) storage is 64-byte aligned
// for the BLAS; CUDA storage comes from the caching allocator
// (core/caching_allocator.h).
class Storage {
 public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

// The C++ element type of a dtype, for typed access.
template <typename T>
constexpr DType DTypeOf();
template <>
constexpr DType DTypeOf<float>() {
  return DType::kF32;
}
template <>
constexpr DType DTypeOf<double>() {
  return DType::kF64;
}
template <>
constexpr DType DTypeOf<int32_t>() {
  return DType::kI32;
}

// Where a host accessor was called from, filled in at the call site (like
// C++20's std::source_location, which the CUDA compiler's C++17 lacks).
struct CallerSite {
  const char* file;
  int line;
  const char* function;
  static constexpr CallerSite Here(const char* file = __builtin_FILE(), int line = __builtin_LINE(),
                                   const char* function = __builtin_FUNCTION()) {
    return {file, line, function};
  }
};

// The emulated device's kernels. An emulated tensor is device memory: a host
// accessor (raw_data, data, span) refuses it and ends the process naming the
// caller, exactly where a CUDA tensor would have been dereferenced on the
// host. Only an op's CPU kernel running for the emulated device may touch its
// memory: while a scope made for Device::kEmulated lives on this thread, host
// accessors accept emulated tensors and tensors created "on the CPU" are
// created on the emulated device, so the kernel's outputs stay device
// memory. A scope made for any other device does nothing. Op dispatchers
// open one (PT_DISPATCH_CUDA in core/ops/op_checks.h); nothing else should.
class EmulatedKernelScope {
 public:
  explicit EmulatedKernelScope(Device device);
  ~EmulatedKernelScope();
  EmulatedKernelScope(const EmulatedKernelScope&) = delete;
  EmulatedKernelScope& operator=(const EmulatedKernelScope&) = delete;
  // True while a kernel for the emulated device runs on this thread.
  static bool Active();

 private:
  bool active_;
};

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory. Use Zeros when the contents matter.
  static Tensor Empty(const Shape& shape, DType dtype, Device device = Device::kCpu);
  static Tensor Zeros(const Shape& shape, DType dtype, Device device = Device::kCpu);
  // Copies `values` (converted to `dtype`, which must be f32 or f64).
  static Tensor FromVector(const std::vector<double>& values, const Shape& shape, DType dtype);
  static Tensor FromInts(const std::vector<int32_t>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Size of dimension `i`; negative `i` counts from the end.
  int64_t dim(int i) const;
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * DTypeSize(dtype_); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return byte_offset_; }

  // The elements' address. On the host only a CPU tensor may be read through
  // it (CUDA code passes CUDA tensors' addresses to its kernels). An emulated
  // tensor is refused outside its kernels, ending the process with the
  // caller's file, line and function: that is where a GPU run would have
  // read device memory on the host. Copy to the host first (CopyToDevice,
  // CopyTo(Device::kCpu)).
  void* raw_data(CallerSite caller = CallerSite::Here()) const;
  // Typed access; aborts on a dtype mismatch (a programming error, not user input).
  template <typename T>
  T* data(CallerSite caller = CallerSite::Here()) const {
    CheckDType(DTypeOf<T>());
    return static_cast<T*>(raw_data(caller));
  }
  template <typename T>
  absl::Span<T> span(CallerSite caller = CallerSite::Here()) const {
    return absl::Span<T>(data<T>(caller), static_cast<size_t>(numel_));
  }
  // The address of the first element wherever it lives, for device kernels
  // and the copy API (core/device.h). Never dereference it on the host.
  void* device_ptr() const;

  // Same storage, new shape with the same element count.
  Tensor Reshape(const Shape& shape) const;
  // Elements [offset, offset + NumElements(shape)) of this tensor, as a view.
  Tensor View(int64_t offset, const Shape& shape) const;
  // A new tensor with its own storage and the same contents.
  Tensor Clone() const;
  // Converts between f32, f64, bf16 and i32 on the tensor's device; returns a copy.
  Tensor To(DType dtype) const;
  // A copy on `device` (host <-> GPU); waits when the copy lands on the host.
  // A CUDA failure ends the process with a message (see core/device.h for
  // the Status-returning CopyToDevice).
  Tensor CopyTo(Device device) const;

  void Zero();
  void Fill(double value);
  // Element i as a double (any dtype; a device tensor is copied to the host
  // first, so this is for tests and logging, not loops).
  double At(int64_t i) const;
  std::vector<double> ToVector() const;
  std::string DebugString() const;  // dtype, device, shape

 private:
  void CheckDType(DType want) const;
  void CheckHostReadable(const CallerSite& caller) const;

  std::shared_ptr<Storage> storage_;
  size_t byte_offset_ = 0;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCpu;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_TENSOR_H_
