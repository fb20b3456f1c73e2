#include "models/parameter_store.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "core/device.h"
#include "core/philox.h"

namespace pipetrain {

uint64_t Fnv1a64(const void* data, size_t bytes, uint64_t state) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    state ^= p[i];
    state *= 0x100000001b3ull;
  }
  return state;
}

namespace {
constexpr int64_t kDeviceAlignElements = 8;
}  // namespace

ParamId ParameterStore::Add(std::string name, Shape shape, InitRule init) {
  if (finalized()) {
    std::fprintf(stderr, "pipetrain: parameter %s added after Finalize\n", name.c_str());
    std::abort();
  }
  const ParamId id = static_cast<ParamId>(infos_.size());
  if (!index_.emplace(name, id).second) {
    std::fprintf(stderr, "pipetrain: duplicate parameter name %s\n", name.c_str());
    std::abort();
  }
  // On the GPU every parameter starts on a 16-byte boundary of its bf16 copy
  // (32 bytes of the f32 masters): cuBLASLt's fast kernels and its fused bias
  // need aligned operands. The gaps stay zero. The CPU layout has no gaps.
  if (device_ == Device::kCuda)
    total_ = (total_ + kDeviceAlignElements - 1) / kDeviceAlignElements * kDeviceAlignElements;
  ParameterInfo info{std::move(name), std::move(shape), total_, init};
  total_ += NumElements(info.shape);
  infos_.push_back(std::move(info));
  return id;
}

void ParameterStore::Finalize() {
  params_ = Tensor::Zeros({total_}, dtype_, device_);
  grads_ = Tensor::Zeros({total_}, dtype_, device_);
  if (compute_dtype_ != dtype_) compute_ = Tensor::Zeros({total_}, compute_dtype_, device_);
}

Tensor ParameterStore::param(ParamId id) const {
  const ParameterInfo& info = infos_[id];
  return (compute_.defined() ? compute_ : params_).View(info.offset, info.shape);
}

Tensor ParameterStore::grad(ParamId id) const {
  const ParameterInfo& info = infos_[id];
  return grads_.View(info.offset, info.shape);
}

void ParameterStore::Initialize(uint64_t seed) {
  // Values are drawn on the host and copied over, so a GPU store starts from
  // exactly the CPU store's f32 values.
  Tensor host = device_ == Device::kCpu ? params_ : Tensor::Zeros({total_}, dtype_);
  for (const ParameterInfo& info : infos_) {
    Tensor p = host.View(info.offset, info.shape);
    double std_dev = 0;
    switch (info.init.kind) {
      case InitKind::kZeros:
        p.Fill(0.0);
        continue;
      case InitKind::kOnes:
        p.Fill(1.0);
        continue;
      case InitKind::kNormal:
        std_dev = info.init.scale;
        break;
      case InitKind::kXavierNormal: {
        // Weights are [fan_out, fan_in].
        const double fan_out = static_cast<double>(info.shape[0]);
        const double fan_in = static_cast<double>(info.shape.back());
        std_dev = info.init.scale * std::sqrt(2.0 / (fan_in + fan_out));
        break;
      }
    }
    const uint64_t name_hash = Fnv1a64(info.name.data(), info.name.size());
    PhiloxStream stream(RngKey{.seed = seed ^ name_hash,
                               .step = 0xFFFFFFFFu,  // never a training step
                               .layer = static_cast<uint32_t>(name_hash >> 32)});
    for (int64_t i = 0; i < p.numel(); ++i) {
      const double v = std_dev * stream.Normal(static_cast<uint64_t>(i));
      if (dtype_ == DType::kF64) {
        p.data<double>()[i] = v;
      } else {
        p.data<float>()[i] = static_cast<float>(v);
      }
    }
  }
  if (device_ != Device::kCpu) {
    // Into the existing storage: layers already hold views of params_.
    const absl::Status copied = CopyTensor(host, params_);
    if (!copied.ok()) {
      std::fprintf(stderr, "pipetrain: initialising parameters: %s\n", copied.ToString().c_str());
      std::abort();
    }
  }
  RefreshComputeCopy();
}

Tensor ParameterStore::PackedHostParams() const {
  if (device_ == Device::kCpu) return params_;
  const Tensor host = params_.CopyTo(Device::kCpu);
  int64_t packed_total = 0;
  for (const ParameterInfo& info : infos_) packed_total += NumElements(info.shape);
  Tensor packed = Tensor::Empty({packed_total}, dtype_);
  int64_t at = 0;
  for (const ParameterInfo& info : infos_) {
    const int64_t n = NumElements(info.shape);
    std::memcpy(static_cast<char*>(packed.raw_data()) + at * DTypeSize(dtype_),
                static_cast<const char*>(host.raw_data()) + info.offset * DTypeSize(dtype_),
                static_cast<size_t>(n) * DTypeSize(dtype_));
    at += n;
  }
  return packed;
}

absl::Status ParameterStore::LoadPackedParams(const Tensor& flat) {
  if (device_ != Device::kCpu) {
    return absl::FailedPreconditionError("LoadPackedParams: the store is not on the CPU");
  }
  if (flat.numel() != params_.numel()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("got %d parameters, the model has %d", flat.numel(), params_.numel()));
  }
  const Tensor host = flat.device() == Device::kCpu ? flat : flat.CopyTo(Device::kCpu);
  const Tensor same = host.dtype() == dtype_ ? host : host.To(dtype_);
  std::memcpy(params_.raw_data(), same.raw_data(), params_.nbytes());
  RefreshComputeCopy();
  return absl::OkStatus();
}

void ParameterStore::RefreshComputeCopy() {
  if (!compute_.defined()) return;
  const absl::Status converted = ConvertInto(params_, compute_);
  if (!converted.ok()) {
    std::fprintf(stderr, "pipetrain: refreshing the %s parameter copy: %s\n",
                 DTypeName(compute_dtype_), converted.ToString().c_str());
    std::abort();
  }
}

std::string ParamsDigest(const ParameterStore& store) {
  const Tensor flat = store.PackedHostParams();  // same layout on every device
  return absl::StrFormat("%016x", Fnv1a64(flat.raw_data(), flat.nbytes()));
}

}  // namespace pipetrain
