#include "core/ops/op_checks.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain::ops {

absl::Status CheckFloatCpu(absl::string_view op, absl::string_view name, const Tensor& t) {
  PT_CHECK_ARG(t.defined(), op, ": ", name, " is an undefined tensor");
  PT_CHECK_ARG(t.dtype() == DType::kF32 || t.dtype() == DType::kF64, op, ": ", name,
               " must be f32 or f64, got ", DTypeName(t.dtype()));
  if (t.device() != Device::kCpu) {
    return absl::UnimplementedError(absl::StrCat(op, ": ", name, " is on ", DeviceName(t.device()),
                                                 "; only the CPU implementation is built"));
  }
  return absl::OkStatus();
}

}  // namespace pipetrain::ops
