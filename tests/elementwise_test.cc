#include "core/ops/elementwise.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using ::pipetrain::testing::IsInvalid;
using ::pipetrain::testing::MaxAbsDiff;
using ::pipetrain::testing::Minus;
using ::pipetrain::testing::NumericGradient;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RecordError;
using ::pipetrain::testing::RelativeError;
using ::pipetrain::testing::WeightedSum;

TEST(ElementwiseTest, AddScaledAxpyAndScaleHandValues) {
  for (DType dtype : {DType::kF32, DType::kF64}) {
    Tensor x = Tensor::FromVector({1, 2, 3, 4}, {2, 2}, dtype);
    Tensor y = Tensor::FromVector({10, 20, 30, 40}, {2, 2}, dtype);
    auto sum = AddScaled(2.0, x, 0.5, y);
    ASSERT_TRUE(sum.ok()) << sum.status();
    EXPECT_EQ(sum->dtype(), dtype);
    EXPECT_EQ(sum->shape(), (Shape{2, 2}));
    EXPECT_EQ(sum->ToVector(), (std::vector<double>{7, 14, 21, 28}));

    ASSERT_TRUE(Axpy(-3.0, x, y).ok());
    EXPECT_EQ(y.ToVector(), (std::vector<double>{7, 14, 21, 28}));

    auto scaled = Scale(x, -0.25);
    ASSERT_TRUE(scaled.ok()) << scaled.status();
    EXPECT_EQ(scaled->ToVector(), (std::vector<double>{-0.25, -0.5, -0.75, -1}));
    EXPECT_EQ(x.ToVector(), (std::vector<double>{1, 2, 3, 4}));  // input untouched
  }
}

TEST(ElementwiseTest, RandomValuesMatchNaive) {
  Tensor x = RandomTensor({3, 5, 7}, 1), y = RandomTensor({3, 5, 7}, 2);
  auto sum = AddScaled(0.3, x, -1.7, y);
  ASSERT_TRUE(sum.ok());
  Tensor y2 = y.Clone();
  ASSERT_TRUE(Axpy(0.9, x, y2).ok());
  auto scaled = Scale(x, 1.3);
  ASSERT_TRUE(scaled.ok());
  auto dot = Dot(x, y);
  ASSERT_TRUE(dot.ok());
  double want_dot = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    EXPECT_DOUBLE_EQ(sum->At(i), 0.3 * x.At(i) - 1.7 * y.At(i));
    EXPECT_DOUBLE_EQ(y2.At(i), y.At(i) + 0.9 * x.At(i));
    EXPECT_DOUBLE_EQ(scaled->At(i), 1.3 * x.At(i));
    want_dot += x.At(i) * y.At(i);
  }
  EXPECT_NEAR(*dot, want_dot, 1e-12);
}

TEST(ElementwiseTest, DotAccumulatesInDoubleAcrossChunks) {
  // Σ_{i<n} i = n(n−1)/2 ≈ 5·10⁹ over many chunks: exact in double, while an
  // f32 accumulator would drop the low digits.
  const int64_t n = 100003;
  std::vector<double> values(n), ones(n, 1.0);
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<double>(i);
  Tensor x = Tensor::FromVector(values, {n}, DType::kF32);
  Tensor y = Tensor::FromVector(ones, {n}, DType::kF32);
  auto dot = Dot(x, y);
  ASSERT_TRUE(dot.ok());
  EXPECT_EQ(*dot, static_cast<double>(n) * (n - 1) / 2);
}

TEST(ElementwiseTest, DotIsIndependentOfThreadCount) {
  Tensor x = RandomTensor({200000}, 3).To(DType::kF32);
  Tensor y = RandomTensor({200000}, 4).To(DType::kF32);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = *Dot(x, y);
  omp_set_num_threads(2);
  const double two = *Dot(x, y);
  omp_set_num_threads(threads);
  EXPECT_EQ(one, two);
}

TEST(ElementwiseTest, Float32AgreesWithFloat64) {
  Tensor x = RandomTensor({50}, 5), y = RandomTensor({50}, 6);
  Tensor x32 = x.To(DType::kF32), y32 = y.To(DType::kF32);
  EXPECT_LT(MaxAbsDiff(AddScaled(0.7, x32, 1.1, y32)->To(DType::kF64), *AddScaled(0.7, x, 1.1, y)),
            1e-6);
  EXPECT_LT(MaxAbsDiff(Scale(x32, 0.7)->To(DType::kF64), *Scale(x, 0.7)), 1e-6);
  EXPECT_NEAR(*Dot(x32, y32), *Dot(x, y), 1e-5);
  Tensor s = RandomTensor({5}, 7);
  EXPECT_LT(MaxAbsDiff(HeadScaleForward(x32, s.To(DType::kF32))->To(DType::kF64),
                       *HeadScaleForward(x, s)),
            1e-6);
  Tensor ds64 = Tensor::Zeros({5}, DType::kF64), ds32 = Tensor::Zeros({5}, DType::kF32);
  ASSERT_TRUE(HeadScaleBackwardWeight(x, y, ds64).ok());
  ASSERT_TRUE(HeadScaleBackwardWeight(x32, y32, ds32).ok());
  EXPECT_LT(MaxAbsDiff(ds32.To(DType::kF64), ds64), 1e-5);
}

TEST(ElementwiseTest, HeadScaleForwardScalesEachHead) {
  // Two heads of width 2: [a b | c d] · (s0, s1).
  Tensor x = Tensor::FromVector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}, DType::kF64);
  Tensor s = Tensor::FromVector({10, -1}, {2}, DType::kF64);
  auto y = HeadScaleForward(x, s);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->ToVector(), (std::vector<double>{10, 20, -3, -4, 50, 60, -7, -8}));
}

TEST(ElementwiseTest, HeadScaleBackwardMatchesFiniteDifferences) {
  Tensor x = RandomTensor({2, 3, 12}, 10);
  Tensor s = RandomTensor({4}, 11);
  Tensor dy = RandomTensor({2, 3, 12}, 12);
  auto loss = [&] { return WeightedSum(*HeadScaleForward(x, s), dy); };
  Tensor numeric_x = NumericGradient(loss, x);
  Tensor numeric_s = NumericGradient(loss, s);

  auto dx = HeadScaleBackwardInput(s, dy);
  ASSERT_TRUE(dx.ok()) << dx.status();
  const double err_x = RelativeError(*dx, numeric_x);
  Tensor ds0 = RandomTensor({4}, 13);
  Tensor ds = ds0.Clone();
  ASSERT_TRUE(HeadScaleBackwardWeight(x, dy, ds).ok());
  const double err_s = RelativeError(Minus(ds, ds0), numeric_s);
  RecordError("rel_err_dx", err_x);
  RecordError("rel_err_ds", err_s);
  EXPECT_LT(err_x, 1e-6);
  EXPECT_LT(err_s, 1e-6);
}

TEST(ElementwiseTest, HeadScaleWeightGradientIsIndependentOfThreadCount) {
  Tensor x = RandomTensor({512, 128}, 20).To(DType::kF32);
  Tensor dy = RandomTensor({512, 128}, 21).To(DType::kF32);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor ds = Tensor::Zeros({8}, DType::kF32);
    EXPECT_TRUE(HeadScaleBackwardWeight(x, dy, ds).ok());
    return ds.ToVector();
  };
  const int threads = omp_get_max_threads();
  const std::vector<double> one = run(1), two = run(2);
  omp_set_num_threads(threads);
  EXPECT_EQ(one, two);
}

TEST(ElementwiseTest, BadArgumentsAreInvalidArgument) {
  Tensor x = RandomTensor({2, 6}, 30), y = RandomTensor({2, 6}, 31);
  Tensor other_shape = RandomTensor({6, 2}, 32);
  Tensor x32 = x.To(DType::kF32);
  Tensor ints = Tensor::FromInts({1, 2}, {2});
  EXPECT_TRUE(IsInvalid(AddScaled(1, x, 1, other_shape).status()));
  EXPECT_TRUE(IsInvalid(AddScaled(1, x, 1, x32).status()));
  EXPECT_TRUE(IsInvalid(AddScaled(1, ints, 1, ints).status()));
  Tensor y_copy = y.Clone();
  EXPECT_TRUE(IsInvalid(Axpy(1, other_shape, y_copy)));
  EXPECT_TRUE(IsInvalid(Axpy(1, x32, y_copy)));
  EXPECT_EQ(MaxAbsDiff(y_copy, y), 0.0);  // failed calls change nothing
  EXPECT_TRUE(IsInvalid(Scale(ints, 2).status()));
  EXPECT_TRUE(IsInvalid(Scale(Tensor(), 2).status()));
  EXPECT_TRUE(IsInvalid(Dot(x, other_shape).status()));
  EXPECT_TRUE(IsInvalid(Dot(x, x32).status()));

  Tensor s = RandomTensor({4}, 33);  // 6 is not a multiple of 4 heads
  EXPECT_TRUE(IsInvalid(HeadScaleForward(x, s).status()));
  EXPECT_TRUE(IsInvalid(HeadScaleForward(x, RandomTensor({3, 1}, 1)).status()));
  EXPECT_TRUE(IsInvalid(HeadScaleForward(x, RandomTensor({3}, 1).To(DType::kF32)).status()));
  EXPECT_TRUE(IsInvalid(HeadScaleBackwardInput(s, x).status()));
  Tensor ds = Tensor::Zeros({3}, DType::kF64);
  EXPECT_TRUE(IsInvalid(HeadScaleBackwardWeight(x, other_shape, ds)));
  Tensor ds32 = Tensor::Zeros({3}, DType::kF32);
  EXPECT_TRUE(IsInvalid(HeadScaleBackwardWeight(x, y, ds32)));
  Tensor ds_bad = Tensor::Zeros({4}, DType::kF64);
  EXPECT_TRUE(IsInvalid(HeadScaleBackwardWeight(x, y, ds_bad)));
  EXPECT_EQ(ds_bad.At(0), 0.0);
}

}  // namespace
}  // namespace pipetrain::ops
