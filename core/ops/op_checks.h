// Argument checks every op's dispatcher shares, so their error messages read
// the same everywhere: "<Op>: <argument> <what is wrong>; <what is expected>".
//
// Dtypes by device: the CPU computes in f32 or f64 (f64 for gradient checks);
// the GPU computes in bf16 or f32 (f32 to compare with the CPU closely). On the
// GPU, per-row statistics (LayerNorm's mean and rstd, cross-entropy's
// logsumexp) and weight gradients are always f32 (DESIGN.md decision 3: bf16
// compute, fp32 master weights and gradients).
#ifndef PIPETRAIN_CORE_OPS_OP_CHECKS_H_
#define PIPETRAIN_CORE_OPS_OP_CHECKS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"

namespace pipetrain::ops {

// `t` is defined, f32 or f64, and not on a CUDA device (for ops with no GPU
// implementation yet: a CUDA tensor gets Unimplemented). The emulated device
// runs the CPU kernels, so it passes.
absl::Status CheckFloatCpu(absl::string_view op, absl::string_view name, const Tensor& t);

// `t` is defined and of a float dtype its device computes in (see above).
absl::Status CheckFloat(absl::string_view op, absl::string_view name, const Tensor& t);

// `t` is defined and on `device` (every tensor of one call lives on one device).
absl::Status CheckDevice(absl::string_view op, absl::string_view name, const Tensor& t,
                         Device device);

// The dtype of statistics and weight gradients for activations like `x`:
// x's own on the CPU, f32 on the GPU.
DType AccumulatorDType(const Tensor& x);

}  // namespace pipetrain::ops

// In an op's dispatcher, after the argument checks: hands the call to the
// CUDA implementation when `tensor` lives on the GPU. Otherwise the rest of
// the function is the CPU kernel; for an emulated-device `tensor` it runs
// inside an EmulatedKernelScope (core/tensor.h), which lets it read the
// emulated tensors and puts its outputs on the emulated device. A CPU-only
// build cannot create CUDA tensors, so there only the scope remains.
#if PIPETRAIN_WITH_CUDA
#define PT_DISPATCH_CUDA(tensor, call)                              \
  if ((tensor).device() == ::pipetrain::Device::kCuda) return call; \
  const ::pipetrain::EmulatedKernelScope pt_emulated_kernel_((tensor).device())
#else
#define PT_DISPATCH_CUDA(tensor, call) \
  const ::pipetrain::EmulatedKernelScope pt_emulated_kernel_((tensor).device())
#endif

#endif  // PIPETRAIN_CORE_OPS_OP_CHECKS_H_
