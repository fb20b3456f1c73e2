#include "core/ops/op_checks.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain::ops {

absl::Status CheckFloatCpu(absl::string_view op, absl::string_view name, const Tensor& t) {
  PT_CHECK_ARG(t.defined(), op, ": ", name, " is an undefined tensor");
  PT_CHECK_ARG(t.dtype() == DType::kF32 || t.dtype() == DType::kF64, op, ": ", name,
               " must be f32 or f64, got ", DTypeName(t.dtype()));
  if (t.device() == Device::kCuda) {
    return absl::UnimplementedError(absl::StrCat(op, ": ", name, " is on ", DeviceName(t.device()),
                                                 "; only the CPU implementation is built"));
  }
  return absl::OkStatus();
}

absl::Status CheckFloat(absl::string_view op, absl::string_view name, const Tensor& t) {
  PT_CHECK_ARG(t.defined(), op, ": ", name, " is an undefined tensor");
  if (t.device() != Device::kCuda) {
    // The emulated device runs the CPU kernels, so it computes as the CPU does.
    PT_CHECK_ARG(t.dtype() == DType::kF32 || t.dtype() == DType::kF64, op, ": ", name,
                 " must be f32 or f64 on the ", DeviceName(t.device()), " device, got ",
                 DTypeName(t.dtype()));
  } else {
    PT_CHECK_ARG(t.dtype() == DType::kF32 || t.dtype() == DType::kBF16, op, ": ", name,
                 " must be bf16 or f32 on the GPU, got ", DTypeName(t.dtype()));
  }
  return absl::OkStatus();
}

absl::Status CheckDevice(absl::string_view op, absl::string_view name, const Tensor& t,
                         Device device) {
  PT_CHECK_ARG(t.defined(), op, ": ", name, " is an undefined tensor");
  PT_CHECK_ARG(t.device() == device, op, ": ", name, " is on ", DeviceName(t.device()),
               " but the other inputs are on ", DeviceName(device),
               "; copy it with Tensor::CopyTo first");
  return absl::OkStatus();
}

DType AccumulatorDType(const Tensor& x) {
  return x.device() == Device::kCuda ? DType::kF32 : x.dtype();
}

}  // namespace pipetrain::ops
