// LayerNorm and PowerNorm on the GPU against the CPU reference, forward and
// backward, over shapes and both GPU dtypes. Skips without a GPU.
//
// The CPU runs in f64 on the very values the GPU sees (inputs rounded to the
// GPU dtype first), so the differences measured are the GPU's own rounding.
#include <tuple>

#include "core/ops/layer_norm.h"
#include "gtest/gtest.h"
#include "tests/testing/gpu.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using ::pipetrain::testing::AbsTolFor;
using ::pipetrain::testing::AllClose;
using ::pipetrain::testing::OnGpu;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RelTolFor;
using ::pipetrain::testing::Rounded;

class CudaLayerNormTest : public ::testing::TestWithParam<std::tuple<Shape, DType>> {};

TEST_P(CudaLayerNormTest, ForwardAndBackwardMatchCpu) {
  PT_REQUIRE_GPU();
  const auto& [shape, dtype] = GetParam();
  const int64_t d = shape.back();
  const Tensor x = Rounded(RandomTensor(shape, 1, 2.0), dtype);
  const Tensor gamma = Rounded(RandomTensor({d}, 2), dtype);
  const Tensor beta = Rounded(RandomTensor({d}, 3), dtype);
  const Tensor dy = Rounded(RandomTensor(shape, 4), dtype);
  const double rtol = RelTolFor(dtype), atol = AbsTolFor(dtype);

  LayerNormSaved cpu_saved, gpu_saved;
  const Tensor y_cpu = *LayerNormForward(x, gamma, beta, 1e-5, &cpu_saved);
  absl::StatusOr<Tensor> y_gpu =
      LayerNormForward(OnGpu(x, dtype), OnGpu(gamma, dtype), OnGpu(beta, dtype), 1e-5, &gpu_saved);
  ASSERT_TRUE(y_gpu.ok()) << y_gpu.status();
  EXPECT_EQ(y_gpu->device(), Device::kCuda);
  EXPECT_EQ(y_gpu->dtype(), dtype);
  EXPECT_TRUE(AllClose(*y_gpu, y_cpu, rtol, atol));
  EXPECT_TRUE(AllClose(gpu_saved.mean, cpu_saved.mean, 1e-5, 1e-5));
  EXPECT_TRUE(AllClose(gpu_saved.rstd, cpu_saved.rstd, 1e-4, 1e-5));

  const Tensor dx_cpu = *LayerNormBackwardInput(x, gamma, cpu_saved, dy);
  absl::StatusOr<Tensor> dx_gpu =
      LayerNormBackwardInput(OnGpu(x, dtype), OnGpu(gamma, dtype), gpu_saved, OnGpu(dy, dtype));
  ASSERT_TRUE(dx_gpu.ok()) << dx_gpu.status();
  EXPECT_TRUE(AllClose(*dx_gpu, dx_cpu, rtol, 4 * atol));

  // Weight gradients accumulate into f32 on the GPU: start both from 0.5.
  Tensor dg_cpu = Tensor::Empty({d}, DType::kF64), db_cpu = Tensor::Empty({d}, DType::kF64);
  dg_cpu.Fill(0.5);
  db_cpu.Fill(0.5);
  ASSERT_TRUE(LayerNormBackwardWeight(x, cpu_saved, dy, dg_cpu, db_cpu).ok());
  Tensor dg_gpu = Tensor::Empty({d}, DType::kF32, Device::kCuda);
  Tensor db_gpu = Tensor::Empty({d}, DType::kF32, Device::kCuda);
  dg_gpu.Fill(0.5);
  db_gpu.Fill(0.5);
  absl::Status st =
      LayerNormBackwardWeight(OnGpu(x, dtype), gpu_saved, OnGpu(dy, dtype), dg_gpu, db_gpu);
  ASSERT_TRUE(st.ok()) << st;
  // Sums over every row: the tolerance grows with the row count.
  const double rows = static_cast<double>(x.numel() / d);
  EXPECT_TRUE(AllClose(dg_gpu, dg_cpu, 1e-4, 1e-5 * rows));
  EXPECT_TRUE(AllClose(db_gpu, db_cpu, 1e-4, 1e-5 * rows));
}

TEST_P(CudaLayerNormTest, PowerNormMatchesCpu) {
  PT_REQUIRE_GPU();
  const auto& [shape, dtype] = GetParam();
  const Tensor x = Rounded(RandomTensor(shape, 5, 3.0), dtype);
  const Tensor dy = Rounded(RandomTensor(shape, 6), dtype);
  for (double power : {0.0, 0.5, 1.0}) {
    PowerNormSaved cpu_saved, gpu_saved;
    const Tensor y_cpu = *PowerNormForward(x, power, 1e-5, &cpu_saved);
    absl::StatusOr<Tensor> y_gpu = PowerNormForward(OnGpu(x, dtype), power, 1e-5, &gpu_saved);
    ASSERT_TRUE(y_gpu.ok()) << y_gpu.status();
    EXPECT_TRUE(AllClose(*y_gpu, y_cpu, RelTolFor(dtype), AbsTolFor(dtype))) << "p=" << power;
    const Tensor dx_cpu = *PowerNormBackward(x, cpu_saved, dy);
    absl::StatusOr<Tensor> dx_gpu = PowerNormBackward(OnGpu(x, dtype), gpu_saved, OnGpu(dy, dtype));
    ASSERT_TRUE(dx_gpu.ok()) << dx_gpu.status();
    EXPECT_TRUE(AllClose(*dx_gpu, dx_cpu, RelTolFor(dtype), 4 * AbsTolFor(dtype))) << "p=" << power;
  }
}

TEST(CudaLayerNormErrors, MixedDevicesAreRejectedWithTheArgumentName) {
  PT_REQUIRE_GPU();
  const Tensor x = RandomTensor({2, 8}, 1).To(DType::kF32).CopyTo(Device::kCuda);
  const Tensor gamma = RandomTensor({8}, 2).To(DType::kF32);  // left on the CPU
  const Tensor beta = RandomTensor({8}, 3).To(DType::kF32).CopyTo(Device::kCuda);
  absl::StatusOr<Tensor> y = LayerNormForward(x, gamma, beta, 1e-5, nullptr);
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("gamma is on cpu"), std::string::npos) << y.status();
}

INSTANTIATE_TEST_SUITE_P(ShapesAndDtypes, CudaLayerNormTest,
                         ::testing::Combine(::testing::Values(Shape{1, 8}, Shape{3, 5, 33},
                                                              Shape{64, 1024}, Shape{300, 4096}),
                                            ::testing::Values(DType::kF32, DType::kBF16)));

}  // namespace
}  // namespace pipetrain::ops
