// For GPU test suites: skip cleanly where no GPU can be used (a CPU-only
// build, or a machine without a device), and compare a device result with the
// CPU reference.
#ifndef PIPETRAIN_TESTS_TESTING_GPU_H_
#define PIPETRAIN_TESTS_TESTING_GPU_H_

#include <algorithm>
#include <cmath>
#include <string>

#include "core/gpu_runtime.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

// Ends the current test as skipped, with the reason, when there is no GPU.
#define PT_REQUIRE_GPU()                                                                    \
  do {                                                                                      \
    std::string pt_why_;                                                                    \
    if (::pipetrain::CudaDeviceCount(&pt_why_) == 0) GTEST_SKIP() << "no GPU: " << pt_why_; \
  } while (0)

namespace pipetrain::testing {

// A CPU tensor rounded through `dtype` (what the GPU will hold), back in f64:
// the CPU reference then sees exactly the GPU's inputs.
inline Tensor Rounded(const Tensor& t, DType dtype) { return t.To(dtype).To(DType::kF64); }

// A CPU f64 tensor converted to `dtype` and copied to the GPU.
inline Tensor OnGpu(const Tensor& cpu, DType dtype) { return cpu.To(dtype).CopyTo(Device::kCuda); }

// max_i |a_i − b_i| / (atol + rtol·|b_i|) ≤ 1 holds for every element; on
// failure the message names the worst element. `a` may live on the GPU.
inline ::testing::AssertionResult AllClose(const Tensor& a, const Tensor& b, double rtol,
                                           double atol) {
  const std::vector<double> va = a.ToVector(), vb = b.ToVector();
  if (va.size() != vb.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << va.size() << " vs " << vb.size();
  }
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double ratio = std::abs(va[i] - vb[i]) / (atol + rtol * std::abs(vb[i]));
    if (!(ratio <= worst)) {  // also catches NaN
      worst = ratio;
      at = i;
      if (std::isnan(ratio)) break;
    }
  }
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << at << ": " << va[at] << " vs " << vb[at]
                                       << " (rtol " << rtol << ", atol " << atol << ")";
}

// Tolerances for an op computed in `dtype` on the GPU against the CPU in f64:
// bf16 keeps 8 significant bits, f32 sums in another order than the CPU.
inline double RelTolFor(DType dtype) { return dtype == DType::kBF16 ? 2e-2 : 1e-4; }
inline double AbsTolFor(DType dtype) { return dtype == DType::kBF16 ? 2e-2 : 1e-5; }

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_GPU_H_
