// AdamW, the gradient sum of squares and norm clipping on the GPU against the
// CPU. Skips without a GPU.
#include <cmath>
#include <tuple>
#include <vector>

#include "core/optim/adamw.h"
#include "core/optim/grad_clip.h"
#include "gtest/gtest.h"
#include "tests/testing/gpu.h"
#include "tests/testing/grad_check.h"

namespace pipetrain {
namespace {

using ::pipetrain::testing::AllClose;
using ::pipetrain::testing::OnGpu;
using ::pipetrain::testing::RandomTensor;

class CudaAdamWTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(CudaAdamWTest, StepsMatchCpuInDouble) {
  PT_REQUIRE_GPU();
  const int64_t n = GetParam();
  const AdamWHyper hyper{
      .lr = 3e-3, .beta1 = 0.9, .beta2 = 0.98, .epsilon = 1e-8, .weight_decay = 0.01};
  // The CPU reference starts from the f32 values the GPU holds.
  Tensor p_cpu = RandomTensor({n}, 51).To(DType::kF32).To(DType::kF64);
  Tensor m_cpu = Tensor::Zeros({n}, DType::kF64), v_cpu = Tensor::Zeros({n}, DType::kF64);
  Tensor p_gpu = OnGpu(p_cpu, DType::kF32);
  Tensor m_gpu = Tensor::Zeros({n}, DType::kF32, Device::kCuda);
  Tensor v_gpu = Tensor::Zeros({n}, DType::kF32, Device::kCuda);
  for (int64_t step = 1; step <= 5; ++step) {
    const Tensor g = RandomTensor({n}, 60 + step).To(DType::kF32).To(DType::kF64);
    ASSERT_TRUE(AdamWStep(hyper, step, p_cpu, g, m_cpu, v_cpu).ok());
    absl::Status st = AdamWStep(hyper, step, p_gpu, OnGpu(g, DType::kF32), m_gpu, v_gpu);
    ASSERT_TRUE(st.ok()) << st;
  }
  EXPECT_TRUE(AllClose(m_gpu, m_cpu, 1e-5, 1e-7));
  EXPECT_TRUE(AllClose(v_gpu, v_cpu, 1e-5, 1e-7));
  EXPECT_TRUE(AllClose(p_gpu, p_cpu, 1e-5, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Sizes, CudaAdamWTest, ::testing::Values(1, 1000, 1 << 20));

TEST(CudaAdamWErrors, MixedDevicesAndF64AreRefused) {
  PT_REQUIRE_GPU();
  Tensor p = Tensor::Zeros({4}, DType::kF32, Device::kCuda);
  Tensor m = Tensor::Zeros({4}, DType::kF32, Device::kCuda);
  Tensor v = Tensor::Zeros({4}, DType::kF32);
  EXPECT_FALSE(AdamWStep(AdamWHyper{}, 1, p, p, m, v).ok());
  Tensor p64 = Tensor::Zeros({4}, DType::kF64).CopyTo(Device::kCuda);
  EXPECT_FALSE(AdamWStep(AdamWHyper{}, 1, p64, p64, p64, p64).ok());
}

class CudaGradClipTest : public ::testing::TestWithParam<std::tuple<int64_t, DType>> {};

TEST_P(CudaGradClipTest, SumOfSquaresAndClipMatchCpu) {
  PT_REQUIRE_GPU();
  const auto& [n, dtype] = GetParam();
  const Tensor x = RandomTensor({n}, 70, 3.0).To(dtype).To(DType::kF64);
  const Tensor g = OnGpu(x, dtype);
  const double cpu = SumOfSquares(x);
  const double gpu = SumOfSquares(g);
  // Squares of f32/bf16 values are exact in double: only the order differs.
  EXPECT_NEAR(gpu, cpu, 1e-12 * cpu);
  EXPECT_EQ(SumOfSquares(g), gpu);  // the same bits again

  // Clipping to half the norm scales by the same factor as on the CPU.
  Tensor clipped_gpu = g.Clone();
  Tensor clipped_cpu = x.Clone();
  absl::StatusOr<double> norm = ClipToNorm(clipped_gpu, gpu, 0.5 * std::sqrt(gpu));
  ASSERT_TRUE(norm.ok()) << norm.status();
  EXPECT_DOUBLE_EQ(*norm, std::sqrt(gpu));
  ASSERT_TRUE(ClipToNorm(clipped_cpu, gpu, 0.5 * std::sqrt(gpu)).ok());
  const double rtol = dtype == DType::kBF16 ? 8e-3 : 1e-7;
  EXPECT_TRUE(AllClose(clipped_gpu, clipped_cpu, rtol, 1e-30));
  // f32 on the GPU is bit for bit the CPU's f32 scaling.
  if (dtype == DType::kF32) {
    Tensor cpu32 = x.To(DType::kF32);
    ASSERT_TRUE(ClipToNorm(cpu32, gpu, 0.5 * std::sqrt(gpu)).ok());
    EXPECT_EQ(clipped_gpu.ToVector(), cpu32.ToVector());
  }
  // No clipping below the threshold: untouched.
  Tensor same = g.Clone();
  ASSERT_TRUE(ClipToNorm(same, gpu, 2.0 * std::sqrt(gpu) + 1.0).ok());
  EXPECT_EQ(same.ToVector(), g.ToVector());
}

INSTANTIATE_TEST_SUITE_P(SizesDTypes, CudaGradClipTest,
                         ::testing::Combine(::testing::Values(1, 255, 1000, 3000007),
                                            ::testing::Values(DType::kF32, DType::kBF16)));

}  // namespace
}  // namespace pipetrain
