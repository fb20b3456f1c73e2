#include "core/tensor.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/device_storage.h"

namespace pipetrain {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF64:
      return 8;
    case DType::kBF16:
      return 2;
    case DType::kI32:
      return 4;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kF64:
      return "f64";
    case DType::kBF16:
      return "bf16";
    case DType::kI32:
      return "i32";
  }
  return "?";
}

const char* DeviceName(Device device) {
  switch (device) {
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
    case Device::kEmulated:
      return "emulated";
  }
  return "?";
}

bool ParseDevice(const std::string& name, Device* device) {
  for (Device d : {Device::kCpu, Device::kCuda, Device::kEmulated}) {
    if (name == DeviceName(d)) {
      *device = d;
      return true;
    }
  }
  return false;
}

namespace {
// Emulated kernels running on this thread (scopes nest: an op may call another).
thread_local int emulated_kernel_depth = 0;

// Where a tensor "created on the CPU" goes: inside an emulated kernel, the
// emulated device (the kernel's outputs are device memory).
Device Placed(Device device) {
  return device == Device::kCpu && emulated_kernel_depth > 0 ? Device::kEmulated : device;
}
}  // namespace

EmulatedKernelScope::EmulatedKernelScope(Device device) : active_(device == Device::kEmulated) {
  if (active_) ++emulated_kernel_depth;
}

EmulatedKernelScope::~EmulatedKernelScope() {
  if (active_) --emulated_kernel_depth;
}

bool EmulatedKernelScope::Active() { return emulated_kernel_depth > 0; }

uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float Bf16ToFloat(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof(value));
  return value;
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  // Emulated-device memory is host memory; only Tensor's accessors tell it apart.
  if (device == Device::kCuda) {
    // The caching allocator of core/cuda; a CPU-only build ends here with a
    // message instead.
    data_ = device_storage::Allocate(bytes);
    return;
  }
  // Round up so aligned_alloc's size is a multiple of the alignment; never 0.
  size_t rounded = ((bytes + 63) / 64) * 64;
  if (rounded == 0) rounded = 64;
  data_ = std::aligned_alloc(64, rounded);
  if (data_ == nullptr) {
    std::fprintf(stderr, "pipetrain: out of host memory allocating %zu bytes\n", bytes);
    std::abort();
  }
}

Storage::~Storage() {
  if (device_ == Device::kCuda) {
    device_storage::Free(data_);
  } else {
    std::free(data_);
  }
}

Tensor Tensor::Empty(const Shape& shape, DType dtype, Device device_asked) {
  const Device device = Placed(device_asked);
  Tensor t;
  t.shape_ = shape;
  t.numel_ = NumElements(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::Zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = Empty(shape, dtype, device);
  t.Zero();
  return t;
}

Tensor Tensor::FromVector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  Tensor t = Empty(shape, dtype);
  if (static_cast<int64_t>(values.size()) != t.numel_) {
    std::fprintf(stderr, "pipetrain: FromVector got %zu values for shape %s\n", values.size(),
                 ShapeString(shape).c_str());
    std::abort();
  }
  for (int64_t i = 0; i < t.numel_; ++i) {
    if (dtype == DType::kF32) {
      t.data<float>()[i] = static_cast<float>(values[i]);
    } else if (dtype == DType::kF64) {
      t.data<double>()[i] = values[i];
    } else {
      t.data<int32_t>()[i] = static_cast<int32_t>(values[i]);
    }
  }
  return t;
}

Tensor Tensor::FromInts(const std::vector<int32_t>& values, const Shape& shape) {
  Tensor t = Empty(shape, DType::kI32);
  if (static_cast<int64_t>(values.size()) != t.numel_) {
    std::fprintf(stderr, "pipetrain: FromInts got %zu values for shape %s\n", values.size(),
                 ShapeString(shape).c_str());
    std::abort();
  }
  std::memcpy(t.raw_data(), values.data(), t.nbytes());
  return t;
}

int64_t Tensor::dim(int i) const {
  int r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r) {
    std::fprintf(stderr, "pipetrain: dim %d out of range for %s\n", i, DebugString().c_str());
    std::abort();
  }
  return shape_[i];
}

void* Tensor::device_ptr() const {
  if (!storage_) return nullptr;
  return static_cast<char*>(storage_->data()) + byte_offset_;
}

void Tensor::CheckHostReadable(const CallerSite& caller) const {
  if (device_ != Device::kEmulated || emulated_kernel_depth > 0) return;
  std::fprintf(stderr,
               "pipetrain: %s:%u (%s) read the emulated-device tensor %s through a host "
               "accessor. Emulated tensors are device memory, as on a GPU: copy to the host "
               "first (CopyToDevice / Tensor::CopyTo(Device::kCpu)).\n",
               caller.file, static_cast<unsigned>(caller.line), caller.function,
               DebugString().c_str());
  std::abort();
}

void* Tensor::raw_data(CallerSite caller) const {
  CheckHostReadable(caller);
  return device_ptr();
}

void Tensor::CheckDType(DType want) const {
  if (want != dtype_) {
    std::fprintf(stderr, "pipetrain: tensor %s accessed as %s\n", DebugString().c_str(),
                 DTypeName(want));
    std::abort();
  }
}

Tensor Tensor::Reshape(const Shape& shape) const {
  if (NumElements(shape) != numel_) {
    std::fprintf(stderr, "pipetrain: cannot reshape %s to %s\n", DebugString().c_str(),
                 ShapeString(shape).c_str());
    std::abort();
  }
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::View(int64_t offset, const Shape& shape) const {
  int64_t n = NumElements(shape);
  if (offset < 0 || offset + n > numel_) {
    std::fprintf(stderr, "pipetrain: view [%lld, +%lld) out of range of %s\n",
                 static_cast<long long>(offset), static_cast<long long>(n), DebugString().c_str());
    std::abort();
  }
  Tensor t = *this;
  t.byte_offset_ = byte_offset_ + static_cast<size_t>(offset) * DTypeSize(dtype_);
  t.shape_ = shape;
  t.numel_ = n;
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Empty(shape_, dtype_, device_);
  if (device_ == Device::kEmulated) {
    if (nbytes() > 0) std::memcpy(t.device_ptr(), device_ptr(), nbytes());  // on the device
  } else if (device_ == Device::kCuda) {
    device_storage::Copy(t.raw_data(), Device::kCuda, raw_data(), Device::kCuda, nbytes());
  } else if (nbytes() > 0) {
    std::memcpy(t.raw_data(), raw_data(), nbytes());
  }
  return t;
}

Tensor Tensor::To(DType dtype) const {
  if (dtype == dtype_) return Clone();
  // An emulated conversion is a kernel on the device: the CPU loop below.
  const EmulatedKernelScope kernel(device_);
  Tensor t = Empty(shape_, dtype, device_);
  if (device_ == Device::kCuda) {
    device_storage::Convert(raw_data(), dtype_, t.raw_data(), dtype, numel_);
    return t;
  }
  for (int64_t i = 0; i < numel_; ++i) {
    double v = At(i);
    if (dtype == DType::kF32) {
      t.data<float>()[i] = static_cast<float>(v);
    } else if (dtype == DType::kF64) {
      t.data<double>()[i] = v;
    } else if (dtype == DType::kI32) {
      t.data<int32_t>()[i] = static_cast<int32_t>(v);
    } else {
      static_cast<uint16_t*>(t.raw_data())[i] = FloatToBf16(static_cast<float>(v));
    }
  }
  return t;
}

void Tensor::Zero() {
  if (device_ == Device::kEmulated) {
    if (nbytes() > 0) std::memset(device_ptr(), 0, nbytes());  // a memset on the device
  } else if (device_ == Device::kCuda) {
    device_storage::SetZero(raw_data(), nbytes());
  } else if (nbytes() > 0) {
    std::memset(raw_data(), 0, nbytes());
  }
}

void Tensor::Fill(double value) {
  if (device_ == Device::kCuda) {
    device_storage::Fill(raw_data(), dtype_, numel_, value);
    return;
  }
  const EmulatedKernelScope kernel(device_);  // a fill kernel on the emulated device
  for (int64_t i = 0; i < numel_; ++i) {
    switch (dtype_) {
      case DType::kF32:
        data<float>()[i] = static_cast<float>(value);
        break;
      case DType::kF64:
        data<double>()[i] = value;
        break;
      case DType::kI32:
        data<int32_t>()[i] = static_cast<int32_t>(value);
        break;
      case DType::kBF16:
        static_cast<uint16_t*>(raw_data())[i] = FloatToBf16(static_cast<float>(value));
        break;
    }
  }
}

double Tensor::At(int64_t i) const {
  if (device_ != Device::kCpu) return View(i, {1}).CopyTo(Device::kCpu).At(0);
  switch (dtype_) {
    case DType::kF32:
      return data<float>()[i];
    case DType::kF64:
      return data<double>()[i];
    case DType::kI32:
      return data<int32_t>()[i];
    case DType::kBF16:
      return Bf16ToFloat(static_cast<const uint16_t*>(raw_data())[i]);
  }
  std::abort();
}

std::vector<double> Tensor::ToVector() const {
  if (device_ != Device::kCpu) return CopyTo(Device::kCpu).ToVector();
  std::vector<double> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[i] = At(i);
  return v;
}

Tensor Tensor::CopyTo(Device device) const {
  Tensor t = Empty(shape_, dtype_, device);
  if (t.device() != Device::kCpu && device_ == Device::kCpu) {
    device_storage::CountHostToDevice(nbytes());
  }
  if (device != Device::kCuda && device_ != Device::kCuda) {
    if (t.device() == Device::kCpu && device_ != Device::kCpu) {
      device_storage::CountDeviceToHost(nbytes());
    }
    if (nbytes() > 0) std::memcpy(t.device_ptr(), device_ptr(), nbytes());
  } else {
    if (t.device() == Device::kCpu) device_storage::CountDeviceToHost(nbytes());
    device_storage::Copy(t.device_ptr(), t.device(), device_ptr(), device_, nbytes());
  }
  return t;
}

std::string Tensor::DebugString() const {
  return absl::StrCat(DTypeName(dtype_), DeviceName(device_), ShapeString(shape_));
}

}  // namespace pipetrain
