#include "core/optim/grad_clip.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain {
namespace {

using testing::RandomTensor;

TEST(GradClipTest, SumOfSquaresOfKnownValues) {
  EXPECT_EQ(SumOfSquares(Tensor::FromVector({3, 4}, {2}, DType::kF32)), 25.0);
  EXPECT_EQ(SumOfSquares(Tensor::FromVector({0.5, -1.5, 2}, {3}, DType::kF64)), 6.5);
  EXPECT_EQ(SumOfSquares(Tensor()), 0.0);
  EXPECT_EQ(SumOfSquares(Tensor::Zeros({0}, DType::kF32)), 0.0);
}

TEST(GradClipTest, SumOfSquaresIsInIndexOrderInDouble) {
  Tensor t = RandomTensor({5000}, 1, 3.0).To(DType::kF32);
  double expected = 0;
  for (int64_t i = 0; i < t.numel(); ++i) expected += t.At(i) * t.At(i);
  EXPECT_EQ(SumOfSquares(t), expected);
}

TEST(GradClipTest, ClipsToTheMaxNorm) {
  for (DType dtype : {DType::kF32, DType::kF64}) {
    Tensor g = Tensor::FromVector({3, 0, -4}, {3}, dtype);
    auto norm = ClipToNorm(g, SumOfSquares(g), 1.0);
    ASSERT_TRUE(norm.ok()) << norm.status();
    EXPECT_DOUBLE_EQ(*norm, 5.0);
    EXPECT_NEAR(g.At(0), 0.6, 1e-7);
    EXPECT_EQ(g.At(1), 0.0);
    EXPECT_NEAR(g.At(2), -0.8, 1e-7);
    EXPECT_NEAR(std::sqrt(SumOfSquares(g)), 1.0, 1e-7);
  }
}

TEST(GradClipTest, LeavesSmallNormsAndDisabledClippingAlone) {
  Tensor g = RandomTensor({100}, 2);
  const std::vector<double> before = g.ToVector();
  const double sum = SumOfSquares(g);
  for (double max_norm : {std::sqrt(sum) * 1.01, 0.0, -1.0}) {
    auto norm = ClipToNorm(g, sum, max_norm);
    ASSERT_TRUE(norm.ok()) << norm.status();
    EXPECT_DOUBLE_EQ(*norm, std::sqrt(sum));
    EXPECT_EQ(g.ToVector(), before) << "max_norm " << max_norm;
  }
}

TEST(GradClipTest, StagesClipWithTheGlobalNorm) {
  // Two stages' buffers, clipped with the sum of both stages' squares.
  Tensor a = RandomTensor({50}, 3), b = RandomTensor({70}, 4, 2.0);
  const double global = SumOfSquares(a) + SumOfSquares(b);
  ASSERT_TRUE(ClipToNorm(a, global, 2.0).ok());
  ASSERT_TRUE(ClipToNorm(b, global, 2.0).ok());
  EXPECT_NEAR(std::sqrt(SumOfSquares(a) + SumOfSquares(b)), 2.0, 1e-12);
}

TEST(GradClipTest, NonFiniteNormIsAnErrorAndLeavesGradients) {
  Tensor g = Tensor::FromVector({1, std::numeric_limits<double>::infinity(), 2}, {3}, DType::kF64);
  const std::vector<double> before = g.ToVector();
  auto norm = ClipToNorm(g, SumOfSquares(g), 1.0);
  EXPECT_EQ(norm.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(norm.status().message().find("not finite"), absl::string_view::npos) << norm.status();
  EXPECT_EQ(g.ToVector(), before);
  EXPECT_FALSE(ClipToNorm(g, std::nan(""), 1.0).ok());
  EXPECT_EQ(g.ToVector(), before);
}

TEST(GradClipTest, RejectsBadArguments) {
  Tensor g = RandomTensor({4}, 5);
  EXPECT_FALSE(ClipToNorm(g, -1.0, 1.0).ok());
  EXPECT_FALSE(ClipToNorm(g, 1.0, std::nan("")).ok());
  Tensor ints = Tensor::FromInts({1, 2}, {2});
  EXPECT_FALSE(ClipToNorm(ints, 5.0, 1.0).ok());
  Tensor unset;
  EXPECT_FALSE(ClipToNorm(unset, 5.0, 1.0).ok());
}

}  // namespace
}  // namespace pipetrain
