// Dropout on the GPU against the CPU: the mask (which elements are zero) must
// be the same bit for bit, and kept values scaled alike. Skips without a GPU.
#include <tuple>

#include "core/ops/dropout.h"
#include "gtest/gtest.h"
#include "tests/testing/gpu.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using ::pipetrain::testing::AllClose;
using ::pipetrain::testing::OnGpu;
using ::pipetrain::testing::RandomTensor;

class CudaDropoutTest : public ::testing::TestWithParam<std::tuple<Shape, DType, double>> {};

TEST_P(CudaDropoutTest, MaskEqualsCpuMask) {
  PT_REQUIRE_GPU();
  const auto& [shape, dtype, p] = GetParam();
  const RngKey key{.seed = 77, .step = 9, .layer = 3, .microbatch = 2, .site = 1};
  // Inputs with no zeros (|x| >= 0.5), so a zero in the output is a drop.
  Tensor x = RandomTensor(shape, 8).To(dtype).To(DType::kF64);
  std::vector<double> values = x.ToVector();
  for (double& value : values) value = value >= 0 ? value + 0.5 : value - 0.5;
  x = Tensor::FromVector(values, shape, DType::kF64).To(dtype).To(DType::kF64);

  for (bool backward : {false, true}) {
    const Tensor y_cpu = backward ? *DropoutBackward(x, p, key) : *DropoutForward(x, p, key);
    absl::StatusOr<Tensor> y_gpu = backward ? DropoutBackward(OnGpu(x, dtype), p, key)
                                            : DropoutForward(OnGpu(x, dtype), p, key);
    ASSERT_TRUE(y_gpu.ok()) << y_gpu.status();
    EXPECT_EQ(y_gpu->device(), Device::kCuda);
    EXPECT_EQ(y_gpu->dtype(), dtype);
    const std::vector<double> a = y_gpu->ToVector(), b = y_cpu.ToVector();
    ASSERT_EQ(a.size(), b.size());
    int64_t mismatches = 0;
    for (size_t i = 0; i < a.size(); ++i) mismatches += (a[i] == 0.0) != (b[i] == 0.0);
    EXPECT_EQ(mismatches, 0) << "of " << a.size() << " elements";
    const double tol = dtype == DType::kBF16 ? 8e-3 : 1e-6;
    // A tiny absolute floor: dropped zeros would compare as 0/0 otherwise.
    EXPECT_TRUE(AllClose(*y_gpu, y_cpu, tol, 1e-30));
  }
}

TEST(CudaDropoutTest, ZeroProbabilityReturnsInput) {
  PT_REQUIRE_GPU();
  const Tensor x = OnGpu(RandomTensor({4, 5}, 1), DType::kBF16);
  absl::StatusOr<Tensor> y = DropoutForward(x, 0.0, RngKey{});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->raw_data(), x.raw_data());
}

INSTANTIATE_TEST_SUITE_P(ShapesDTypesP, CudaDropoutTest,
                         ::testing::Combine(::testing::Values(Shape{1}, Shape{7, 13},
                                                              Shape{4, 33, 512}, Shape{3, 1 << 20}),
                                            ::testing::Values(DType::kF32, DType::kBF16),
                                            ::testing::Values(0.1, 0.5)));

}  // namespace
}  // namespace pipetrain::ops
