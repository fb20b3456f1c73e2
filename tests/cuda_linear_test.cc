// Linear on the GPU (cuBLASLt) against the CPU reference, forward and both
// backwards, over shapes (odd sizes, leading dims, a realistic layer) and both
// GPU dtypes. Skips without a GPU.
//
// The CPU runs in f64 on the very values the GPU sees (inputs rounded to the
// GPU dtype first). Products of bf16 values are exact in f32 and the GPU
// accumulates in f32, so what remains is f32 summation over K terms (error
// growing like √K times the terms' size) plus, for bf16 outputs, one final
// rounding to 8 significant bits (covered by the relative tolerance).
#include <cmath>
#include <tuple>

#include "core/device.h"
#include "core/ops/linear.h"
#include "gtest/gtest.h"
#include "tests/testing/gpu.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using ::pipetrain::testing::AllClose;
using ::pipetrain::testing::OnGpu;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::Rounded;

// Outputs in `dtype` of K-term sums of products of O(1) values.
double RelTol(DType dtype) { return dtype == DType::kBF16 ? 1e-2 : 1e-4; }
double AbsTol(DType dtype, int64_t k) {
  return (dtype == DType::kBF16 ? 1e-3 : 1e-5) * std::sqrt(static_cast<double>(k));
}

// x shape (its last dim is `in`) and `out`.
class CudaLinearTest
    : public ::testing::TestWithParam<std::tuple<std::tuple<Shape, int64_t>, DType>> {};

TEST_P(CudaLinearTest, ForwardAndBackwardMatchCpu) {
  PT_REQUIRE_GPU();
  const auto& [shapes, dtype] = GetParam();
  const auto& [x_shape, out] = shapes;
  const int64_t in = x_shape.back();
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < x_shape.size(); ++i) rows *= x_shape[i];
  Shape y_shape = x_shape;
  y_shape.back() = out;
  const Tensor x = Rounded(RandomTensor(x_shape, 1), dtype);
  const Tensor w = Rounded(RandomTensor({out, in}, 2), dtype);
  const Tensor b = Rounded(RandomTensor({out}, 3), dtype);
  const Tensor dy = Rounded(RandomTensor(y_shape, 4), dtype);

  // Forward, with and without the bias.
  for (const bool with_bias : {true, false}) {
    const Tensor y_cpu = *LinearForward(x, w, with_bias ? &b : nullptr);
    const Tensor b_gpu = OnGpu(b, dtype);
    absl::StatusOr<Tensor> y_gpu =
        LinearForward(OnGpu(x, dtype), OnGpu(w, dtype), with_bias ? &b_gpu : nullptr);
    ASSERT_TRUE(y_gpu.ok()) << y_gpu.status();
    EXPECT_EQ(y_gpu->device(), Device::kCuda);
    EXPECT_EQ(y_gpu->dtype(), dtype);
    EXPECT_EQ(y_gpu->shape(), y_shape);
    EXPECT_TRUE(AllClose(*y_gpu, y_cpu, RelTol(dtype), AbsTol(dtype, in))) << "bias " << with_bias;
  }

  const Tensor dx_cpu = *LinearBackwardInput(dy, w);
  absl::StatusOr<Tensor> dx_gpu = LinearBackwardInput(OnGpu(dy, dtype), OnGpu(w, dtype));
  ASSERT_TRUE(dx_gpu.ok()) << dx_gpu.status();
  EXPECT_EQ(dx_gpu->dtype(), dtype);
  EXPECT_EQ(dx_gpu->shape(), x_shape);
  EXPECT_TRUE(AllClose(*dx_gpu, dx_cpu, RelTol(dtype), AbsTol(dtype, out)));

  // Weight gradients accumulate (into f32 on the GPU): start both from 0.5.
  Tensor dw_cpu = Tensor::Empty({out, in}, DType::kF64), db_cpu = Tensor::Empty({out}, DType::kF64);
  dw_cpu.Fill(0.5);
  db_cpu.Fill(0.5);
  ASSERT_TRUE(LinearBackwardWeight(x, dy, dw_cpu, &db_cpu).ok());
  const Tensor x_gpu = OnGpu(x, dtype), dy_gpu = OnGpu(dy, dtype);
  Tensor dw_gpu = Tensor::Empty({out, in}, DType::kF32, Device::kCuda);
  Tensor db_gpu = Tensor::Empty({out}, DType::kF32, Device::kCuda);
  dw_gpu.Fill(0.5);
  db_gpu.Fill(0.5);
  absl::Status st = LinearBackwardWeight(x_gpu, dy_gpu, dw_gpu, &db_gpu);
  ASSERT_TRUE(st.ok()) << st;
  // f32 outputs whatever the inputs: f32 tolerances over `rows`-term sums.
  EXPECT_TRUE(AllClose(dw_gpu, dw_cpu, 1e-4, AbsTol(DType::kF32, rows)));
  EXPECT_TRUE(AllClose(db_gpu, db_cpu, 1e-4, 1e-6 * static_cast<double>(rows) + 1e-5));

  // The same call again gives the same bits (no atomics in the sums).
  Tensor dw_again = Tensor::Empty({out, in}, DType::kF32, Device::kCuda);
  Tensor db_again = Tensor::Empty({out}, DType::kF32, Device::kCuda);
  dw_again.Fill(0.5);
  db_again.Fill(0.5);
  ASSERT_TRUE(LinearBackwardWeight(x_gpu, dy_gpu, dw_again, &db_again).ok());
  EXPECT_EQ(dw_again.ToVector(), dw_gpu.ToVector());
  EXPECT_EQ(db_again.ToVector(), db_gpu.ToVector());
}

INSTANTIATE_TEST_SUITE_P(
    ShapesAndDtypes, CudaLinearTest,
    ::testing::Combine(::testing::Values(std::make_tuple(Shape{1, 1}, int64_t{1}),
                                         std::make_tuple(Shape{3, 5}, int64_t{7}),
                                         std::make_tuple(Shape{2, 3, 33}, int64_t{17}),
                                         std::make_tuple(Shape{130, 64}, int64_t{96}),
                                         std::make_tuple(Shape{8192, 1024}, int64_t{4096})),
                       ::testing::Values(DType::kF32, DType::kBF16)));

// Parameters are views into one flat buffer (ParameterStore), so operands
// can start at any element: here x, w, b and dw all start one element in.
TEST(CudaLinear, OperandsViewedAtOddOffsetsMatchCpu) {
  PT_REQUIRE_GPU();
  const int64_t rows = 37, in = 48, out = 24;
  const Tensor x = Rounded(RandomTensor({rows, in}, 11), DType::kF32);
  const Tensor w = Rounded(RandomTensor({out, in}, 12), DType::kF32);
  const Tensor b = Rounded(RandomTensor({out}, 13), DType::kF32);
  const Tensor dy = Rounded(RandomTensor({rows, out}, 14), DType::kF32);
  // A device copy of `t` that starts one f32 element into its storage.
  auto odd = [](const Tensor& t) {
    Tensor flat = Tensor::Zeros({t.numel() + 1}, DType::kF32, Device::kCuda);
    Tensor view = flat.View(1, t.shape());
    EXPECT_TRUE(CopyTensor(t.To(DType::kF32).CopyTo(Device::kCuda), view).ok());
    return view;
  };
  const Tensor xg = odd(x), wg = odd(w), bg = odd(b), dyg = odd(dy);
  absl::StatusOr<Tensor> y = LinearForward(xg, wg, &bg);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_TRUE(AllClose(*y, *LinearForward(x, w, &b), 1e-4, AbsTol(DType::kF32, in)));
  absl::StatusOr<Tensor> dx = LinearBackwardInput(dyg, wg);
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_TRUE(AllClose(*dx, *LinearBackwardInput(dy, w), 1e-4, AbsTol(DType::kF32, out)));
  Tensor dw_cpu = Tensor::Zeros({out, in}, DType::kF64);
  ASSERT_TRUE(LinearBackwardWeight(x, dy, dw_cpu, nullptr).ok());
  Tensor dw = odd(Tensor::Zeros({out, in}, DType::kF64));
  absl::Status st = LinearBackwardWeight(xg, dyg, dw, nullptr);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(AllClose(dw, dw_cpu, 1e-4, AbsTol(DType::kF32, rows)));
}

TEST(CudaLinear, NoRowsGiveEmptyResultsAndLeaveGradientsAlone) {
  PT_REQUIRE_GPU();
  const Tensor x = Tensor::Zeros({0, 4}, DType::kF32, Device::kCuda);
  const Tensor w = RandomTensor({3, 4}, 1).To(DType::kF32).CopyTo(Device::kCuda);
  absl::StatusOr<Tensor> y = LinearForward(x, w, nullptr);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{0, 3}));
  const Tensor dy = Tensor::Zeros({0, 3}, DType::kF32, Device::kCuda);
  Tensor dw = Tensor::Zeros({3, 4}, DType::kF32, Device::kCuda);
  Tensor db = Tensor::Zeros({3}, DType::kF32, Device::kCuda);
  dw.Fill(0.25);
  ASSERT_TRUE(LinearBackwardWeight(x, dy, dw, &db).ok());
  for (double v : dw.ToVector()) EXPECT_EQ(v, 0.25);
  for (double v : db.ToVector()) EXPECT_EQ(v, 0.0);
}

TEST(CudaLinearErrors, MixedDevicesAndWrongGradientDtypeAreRejected) {
  PT_REQUIRE_GPU();
  const Tensor x = RandomTensor({2, 4}, 1).To(DType::kBF16).CopyTo(Device::kCuda);
  const Tensor w_cpu = RandomTensor({3, 4}, 2).To(DType::kF32);
  absl::StatusOr<Tensor> y = LinearForward(x, w_cpu, nullptr);
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("w is on cpu"), std::string::npos) << y.status();

  // On the GPU, dw is f32 even for bf16 activations.
  const Tensor dy = RandomTensor({2, 3}, 3).To(DType::kBF16).CopyTo(Device::kCuda);
  Tensor dw_bf16 = Tensor::Zeros({3, 4}, DType::kBF16, Device::kCuda);
  absl::Status st = LinearBackwardWeight(x, dy, dw_bf16, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("dw is bf16 but must be f32"), std::string::npos) << st;
}

}  // namespace
}  // namespace pipetrain::ops
