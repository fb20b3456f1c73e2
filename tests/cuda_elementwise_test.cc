// The elementwise ops and the activations on the GPU against the CPU
// reference, over shapes (odd sizes, a realistic activation) and both GPU
// dtypes. Skips without a GPU.
//
// The CPU runs in f64 on the very values the GPU sees (inputs rounded to the
// GPU dtype first). Pointwise results differ by the GPU's one rounding to its
// dtype; the reductions (Dot in double, the head-scale gradient in f32) by
// their summation order, which is also checked to repeat exactly.
#include <cmath>
#include <tuple>

#include "core/ops/activation.h"
#include "core/ops/elementwise.h"
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

// Shape of x, the number of heads (dividing its last dim), and the dtype.
class CudaElementwiseTest
    : public ::testing::TestWithParam<std::tuple<std::tuple<Shape, int64_t>, DType>> {
 protected:
  const Shape& shape() const { return std::get<0>(std::get<0>(GetParam())); }
  int64_t heads() const { return std::get<1>(std::get<0>(GetParam())); }
  DType dtype() const { return std::get<1>(GetParam()); }
};

TEST_P(CudaElementwiseTest, PointwiseOpsMatchCpu) {
  PT_REQUIRE_GPU();
  const DType dt = dtype();
  const double rtol = RelTolFor(dt), atol = AbsTolFor(dt);
  const Tensor x = Rounded(RandomTensor(shape(), 1, 2.0), dt);
  const Tensor y = Rounded(RandomTensor(shape(), 2), dt);

  absl::StatusOr<Tensor> sum = AddScaled(0.5, OnGpu(x, dt), -1.5, OnGpu(y, dt));
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(sum->device(), Device::kCuda);
  EXPECT_EQ(sum->dtype(), dt);
  EXPECT_TRUE(AllClose(*sum, *AddScaled(0.5, x, -1.5, y), rtol, atol));

  absl::StatusOr<Tensor> scaled = Scale(OnGpu(x, dt), -0.75);
  ASSERT_TRUE(scaled.ok()) << scaled.status();
  EXPECT_TRUE(AllClose(*scaled, *Scale(x, -0.75), rtol, atol));

  Tensor acc_gpu = OnGpu(y, dt);
  Tensor acc_cpu = y.Clone();
  ASSERT_TRUE(Axpy(0.25, OnGpu(x, dt), acc_gpu).ok());
  ASSERT_TRUE(Axpy(0.25, x, acc_cpu).ok());
  EXPECT_TRUE(AllClose(acc_gpu, acc_cpu, rtol, atol));
}

TEST_P(CudaElementwiseTest, DotMatchesCpuAndRepeats) {
  PT_REQUIRE_GPU();
  const DType dt = dtype();
  const Tensor x = Rounded(RandomTensor(shape(), 3), dt);
  const Tensor y = Rounded(RandomTensor(shape(), 4), dt);
  const Tensor x_gpu = OnGpu(x, dt), y_gpu = OnGpu(y, dt);
  absl::StatusOr<double> dot = Dot(x_gpu, y_gpu);
  ASSERT_TRUE(dot.ok()) << dot.status();
  // Products of bf16/f32 values are exact in double; only the order of the
  // double additions differs.
  const double want = *Dot(x, y);
  const double n = static_cast<double>(x.numel());
  EXPECT_NEAR(*dot, want, 1e-12 * n);
  EXPECT_EQ(*Dot(x_gpu, y_gpu), *dot);
}

TEST_P(CudaElementwiseTest, HeadScaleMatchesCpu) {
  PT_REQUIRE_GPU();
  const DType dt = dtype();
  const double rtol = RelTolFor(dt), atol = AbsTolFor(dt);
  const Tensor x = Rounded(RandomTensor(shape(), 5), dt);
  const Tensor s = Rounded(RandomTensor({heads()}, 6, 2.0), dt);
  const Tensor dy = Rounded(RandomTensor(shape(), 7), dt);

  absl::StatusOr<Tensor> y = HeadScaleForward(OnGpu(x, dt), OnGpu(s, dt));
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->dtype(), dt);
  EXPECT_TRUE(AllClose(*y, *HeadScaleForward(x, s), rtol, atol));

  absl::StatusOr<Tensor> dx = HeadScaleBackwardInput(OnGpu(s, dt), OnGpu(dy, dt));
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_TRUE(AllClose(*dx, *HeadScaleBackwardInput(s, dy), rtol, atol));

  // ds accumulates (into f32 on the GPU): start both from 0.5.
  Tensor ds_cpu = Tensor::Empty({heads()}, DType::kF64);
  ds_cpu.Fill(0.5);
  ASSERT_TRUE(HeadScaleBackwardWeight(x, dy, ds_cpu).ok());
  const Tensor x_gpu = OnGpu(x, dt), dy_gpu = OnGpu(dy, dt);
  Tensor ds_gpu = Tensor::Empty({heads()}, DType::kF32, Device::kCuda);
  ds_gpu.Fill(0.5);
  absl::Status st = HeadScaleBackwardWeight(x_gpu, dy_gpu, ds_gpu);
  ASSERT_TRUE(st.ok()) << st;
  // f32 sums of numel/heads exact products.
  const double terms = static_cast<double>(x.numel() / heads());
  EXPECT_TRUE(AllClose(ds_gpu, ds_cpu, 1e-4, 1e-5 * std::sqrt(terms)));
  Tensor ds_again = Tensor::Empty({heads()}, DType::kF32, Device::kCuda);
  ds_again.Fill(0.5);
  ASSERT_TRUE(HeadScaleBackwardWeight(x_gpu, dy_gpu, ds_again).ok());
  EXPECT_EQ(ds_again.ToVector(), ds_gpu.ToVector());
}

TEST_P(CudaElementwiseTest, ActivationsMatchCpu) {
  PT_REQUIRE_GPU();
  const DType dt = dtype();
  const double rtol = RelTolFor(dt), atol = AbsTolFor(dt);
  const Tensor x = Rounded(RandomTensor(shape(), 8, 4.0), dt);
  const Tensor dy = Rounded(RandomTensor(shape(), 9), dt);
  for (const ActivationKind kind : {ActivationKind::kGelu, ActivationKind::kRelu}) {
    const int k = static_cast<int>(kind);
    absl::StatusOr<Tensor> y = ActivationForward(kind, OnGpu(x, dt));
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_EQ(y->dtype(), dt);
    EXPECT_TRUE(AllClose(*y, *ActivationForward(kind, x), rtol, atol)) << "kind " << k;
    absl::StatusOr<Tensor> dx = ActivationBackward(kind, OnGpu(x, dt), OnGpu(dy, dt));
    ASSERT_TRUE(dx.ok()) << dx.status();
    EXPECT_TRUE(AllClose(*dx, *ActivationBackward(kind, x, dy), rtol, atol)) << "kind " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    ShapesAndDtypes, CudaElementwiseTest,
    ::testing::Combine(::testing::Values(std::make_tuple(Shape{1, 2}, int64_t{1}),
                                         std::make_tuple(Shape{3, 5, 33}, int64_t{3}),
                                         std::make_tuple(Shape{1000, 12}, int64_t{4}),
                                         std::make_tuple(Shape{8192, 1024}, int64_t{16})),
                       ::testing::Values(DType::kF32, DType::kBF16)));

TEST(CudaElementwise, ReluAtZeroAndGeluAtKnownPoints) {
  PT_REQUIRE_GPU();
  const Tensor x = Tensor::FromVector({-1.0, 0.0, 1.0}, {3}, DType::kF32).CopyTo(Device::kCuda);
  const Tensor dy = Tensor::FromVector({1.0, 1.0, 1.0}, {3}, DType::kF32).CopyTo(Device::kCuda);
  // Each result is checked before use: a failed op must fail this case, not
  // abort the binary (and the cases after it) on a GPU machine's short lease.
  absl::StatusOr<Tensor> relu_dx = ActivationBackward(ActivationKind::kRelu, x, dy);
  ASSERT_TRUE(relu_dx.ok()) << relu_dx.status();
  EXPECT_EQ(relu_dx->ToVector(), (std::vector<double>{0.0, 0.0, 1.0}));
  // GELU(1) = Φ(1) = 0.8413447; GELU'(0) = 0.5.
  absl::StatusOr<Tensor> gelu = ActivationForward(ActivationKind::kGelu, x);
  ASSERT_TRUE(gelu.ok()) << gelu.status();
  EXPECT_NEAR(gelu->ToVector()[2], 0.8413447460685429, 1e-6);
  absl::StatusOr<Tensor> gelu_dx = ActivationBackward(ActivationKind::kGelu, x, dy);
  ASSERT_TRUE(gelu_dx.ok()) << gelu_dx.status();
  EXPECT_NEAR(gelu_dx->ToVector()[1], 0.5, 1e-7);
}

TEST(CudaElementwiseErrors, MixedDevicesAndWrongGradientDtypeAreRejected) {
  PT_REQUIRE_GPU();
  const Tensor x = RandomTensor({2, 8}, 1).To(DType::kBF16).CopyTo(Device::kCuda);
  const Tensor y_cpu = RandomTensor({2, 8}, 2).To(DType::kF32);
  absl::StatusOr<Tensor> sum = AddScaled(1.0, x, 1.0, y_cpu);
  ASSERT_FALSE(sum.ok());
  EXPECT_NE(sum.status().message().find("y is on cpu"), std::string::npos) << sum.status();

  // ds is f32 on the GPU whatever x is.
  Tensor ds_bf16 = Tensor::Zeros({2}, DType::kBF16, Device::kCuda);
  absl::Status st = HeadScaleBackwardWeight(x, x, ds_bf16);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("ds must be f32"), std::string::npos) << st;
}

TEST(CudaElementwiseErrors, ActivationDyOnAnotherDeviceIsRejected) {
  PT_REQUIRE_GPU();
  const Tensor x = RandomTensor({4}, 1).To(DType::kF32).CopyTo(Device::kCuda);
  const Tensor dy = RandomTensor({4}, 2).To(DType::kF32);
  absl::StatusOr<Tensor> dx = ActivationBackward(ActivationKind::kGelu, x, dy);
  ASSERT_FALSE(dx.ok());
  EXPECT_NE(dx.status().message().find("dy is on cpu"), std::string::npos) << dx.status();
}

}  // namespace
}  // namespace pipetrain::ops
