// Argument checks every op's dispatcher shares, so their error messages read
// the same everywhere: "<Op>: <argument> <what is wrong>; <what is expected>".
#ifndef PIPETRAIN_CORE_OPS_OP_CHECKS_H_
#define PIPETRAIN_CORE_OPS_OP_CHECKS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"

namespace pipetrain::ops {

// `t` is defined, f32 or f64, and on the CPU (the only backend built so far
// reports Unimplemented for device tensors).
absl::Status CheckFloatCpu(absl::string_view op, absl::string_view name, const Tensor& t);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_OP_CHECKS_H_
