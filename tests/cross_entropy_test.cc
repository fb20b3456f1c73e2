#include "core/ops/cross_entropy.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using testing::NumericGradient;
using testing::RandomTensor;
using testing::RelativeError;
using testing::WeightedSum;

constexpr int32_t kIgnore = -100;

TEST(CrossEntropyTest, LossMatchesHandComputation) {
  // Row 0: logits (1, 2, 3), target 2; log Σ e^x = 3 + log(1 + e^-1 + e^-2).
  // Row 1: all-zero logits, target 0: every smoothed loss is log 3.
  // Row 2: ignored.
  Tensor logits = Tensor::FromVector({1, 2, 3, 0, 0, 0, 5, -5, 9}, {3, 3}, DType::kF64);
  Tensor targets = Tensor::FromInts({2, 0, kIgnore}, {3});
  const double lse0 = 3.40760596444438;
  const double log3 = 1.0986122886681098;

  CrossEntropySaved saved;
  auto plain = CrossEntropyForward(logits, targets, 0.0, kIgnore, &saved);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->tokens, 2);
  EXPECT_NEAR(plain->nll_sum, (lse0 - 3) + log3, 1e-13);
  EXPECT_NEAR(plain->loss_sum, plain->nll_sum, 1e-13);
  EXPECT_NEAR(saved.logsumexp.At(0), lse0, 1e-13);
  EXPECT_NEAR(saved.logsumexp.At(1), log3, 1e-13);

  // With ε = 0.1, row 0's target distribution is (1/30, 1/30, 0.9 + 1/30), so
  // its loss is lse − (1/30·1 + 1/30·2 + 28/30·3) = lse − 2.9.
  auto smooth = CrossEntropyForward(logits, targets, 0.1, kIgnore, nullptr);
  ASSERT_TRUE(smooth.ok()) << smooth.status();
  EXPECT_NEAR(smooth->loss_sum, (lse0 - 2.9) + log3, 1e-13);
  EXPECT_NEAR(smooth->nll_sum, plain->nll_sum, 1e-13);
  EXPECT_EQ(smooth->tokens, 2);
}

TEST(CrossEntropyTest, GradientOfASimpleRowIsSoftmaxMinusTarget) {
  Tensor logits = Tensor::FromVector({0, 0, 0, 0}, {1, 4}, DType::kF64);
  Tensor targets = Tensor::FromInts({1}, {1});
  CrossEntropySaved saved;
  ASSERT_TRUE(CrossEntropyForward(logits, targets, 0.2, kIgnore, &saved).ok());
  auto d = CrossEntropyBackward(logits, targets, 0.2, kIgnore, saved, 1.0);
  ASSERT_TRUE(d.ok()) << d.status();
  // softmax = 1/4 each; q = 0.05 off target, 0.85 on target.
  EXPECT_NEAR(d->At(0), 0.2, 1e-15);
  EXPECT_NEAR(d->At(1), -0.6, 1e-15);
  EXPECT_NEAR(d->At(2), 0.2, 1e-15);
  EXPECT_NEAR(d->At(3), 0.2, 1e-15);
}

// The op already returns a scalar sum, so L = loss_sum is checked directly
// (no random weighting); rows 1 and 4 are ignored and must get zero gradient.
void CheckGradient(double smoothing) {
  const int64_t n = 6, v = 7;
  Tensor logits = RandomTensor({n, v}, 21, 2.0);
  Tensor targets = Tensor::FromInts({3, kIgnore, 0, 6, kIgnore, 2}, {n});
  CrossEntropySaved saved;
  ASSERT_TRUE(CrossEntropyForward(logits, targets, smoothing, kIgnore, &saved).ok());
  auto d = CrossEntropyBackward(logits, targets, smoothing, kIgnore, saved, 1.0);
  ASSERT_TRUE(d.ok()) << d.status();
  auto loss = [&] {
    return CrossEntropyForward(logits, targets, smoothing, kIgnore, nullptr)->loss_sum;
  };
  Tensor numeric = NumericGradient(loss, logits);
  const double error = RelativeError(*d, numeric);
  std::printf("[grad] cross-entropy smoothing %.1f dlogits relative error %.3g\n", smoothing,
              error);
  EXPECT_LT(error, 1e-6);
  for (int64_t row : {1, 4}) {
    for (int64_t j = 0; j < v; ++j) EXPECT_EQ(d->At(row * v + j), 0.0) << "ignored row " << row;
  }
}

TEST(CrossEntropyTest, GradientMatchesFiniteDifferences) { CheckGradient(0.0); }
TEST(CrossEntropyTest, SmoothedGradientMatchesFiniteDifferences) { CheckGradient(0.1); }

TEST(CrossEntropyTest, GradScaleMultipliesTheGradient) {
  Tensor logits = RandomTensor({4, 5}, 22);
  Tensor targets = Tensor::FromInts({0, 4, kIgnore, 2}, {4});
  CrossEntropySaved saved;
  ASSERT_TRUE(CrossEntropyForward(logits, targets, 0.1, kIgnore, &saved).ok());
  Tensor one = *CrossEntropyBackward(logits, targets, 0.1, kIgnore, saved, 1.0);
  Tensor scaled = *CrossEntropyBackward(logits, targets, 0.1, kIgnore, saved, 0.125);
  double largest = 0;
  for (int64_t i = 0; i < one.numel(); ++i) {
    EXPECT_DOUBLE_EQ(scaled.At(i), 0.125 * one.At(i)) << "element " << i;
    largest = std::max(largest, std::abs(one.At(i)));
  }
  EXPECT_GT(largest, 0.01);
}

TEST(CrossEntropyTest, FloatAgreesWithDoubleAndThreadCountDoesNotMatter) {
  const int64_t n = 400, v = 50;  // enough logits to run in parallel
  Tensor logits = RandomTensor({n, v}, 23, 3.0);
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = i % 7 == 0 ? kIgnore : static_cast<int32_t>(i * 13 % v);
  Tensor targets = Tensor::FromInts(t, {n});
  CrossEntropySaved s64, s32;
  auto f64 = CrossEntropyForward(logits, targets, 0.1, kIgnore, &s64);
  auto f32 = CrossEntropyForward(logits.To(DType::kF32), targets, 0.1, kIgnore, &s32);
  ASSERT_TRUE(f64.ok() && f32.ok());
  EXPECT_EQ(f64->tokens, f32->tokens);
  EXPECT_NEAR(f32->loss_sum, f64->loss_sum, 1e-6 * f64->loss_sum);
  EXPECT_NEAR(f32->nll_sum, f64->nll_sum, 1e-6 * f64->nll_sum);
  Tensor d64 = *CrossEntropyBackward(logits, targets, 0.1, kIgnore, s64, 0.5);
  Tensor d32 = *CrossEntropyBackward(logits.To(DType::kF32), targets, 0.1, kIgnore, s32, 0.5);
  for (int64_t i = 0; i < d64.numel(); ++i) ASSERT_NEAR(d32.At(i), d64.At(i), 1e-6) << i;

  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto serial = CrossEntropyForward(logits, targets, 0.1, kIgnore, nullptr);
  omp_set_num_threads(std::max(2, threads));
  auto parallel = CrossEntropyForward(logits, targets, 0.1, kIgnore, nullptr);
  omp_set_num_threads(threads);
  EXPECT_EQ(serial->loss_sum, parallel->loss_sum);
  EXPECT_EQ(serial->nll_sum, parallel->nll_sum);
}

TEST(CrossEntropyTest, OutOfRangeTargetIsAnErrorNamingTheRow) {
  Tensor logits = RandomTensor({3, 4}, 24);
  for (int32_t bad : {4, -1, 1000}) {
    Tensor targets = Tensor::FromInts({0, 1, bad}, {3});
    auto r = CrossEntropyForward(logits, targets, 0.0, kIgnore, nullptr);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("targets[2]"), absl::string_view::npos) << r.status();
    CrossEntropySaved saved{.logsumexp = Tensor::Zeros({3}, DType::kF64)};
    EXPECT_FALSE(CrossEntropyBackward(logits, targets, 0.0, kIgnore, saved, 1.0).ok()) << bad;
  }
  // -1 is fine when it is the ignore index.
  Tensor targets = Tensor::FromInts({0, -1, 3}, {3});
  auto r = CrossEntropyForward(logits, targets, 0.0, -1, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tokens, 2);
}

TEST(CrossEntropyTest, RejectsBadShapesAndDtypes) {
  Tensor logits = RandomTensor({3, 4}, 25);
  Tensor targets = Tensor::FromInts({0, 1, 2}, {3});
  EXPECT_FALSE(CrossEntropyForward(logits.Reshape({12}), targets, 0, kIgnore, nullptr).ok());
  EXPECT_FALSE(
      CrossEntropyForward(logits, Tensor::FromInts({0, 1}, {2}), 0, kIgnore, nullptr).ok());
  EXPECT_FALSE(CrossEntropyForward(logits, targets.To(DType::kF64), 0, kIgnore, nullptr).ok());
  EXPECT_FALSE(CrossEntropyForward(Tensor::FromInts(std::vector<int32_t>(12, 0), {3, 4}), targets,
                                   0, kIgnore, nullptr)
                   .ok());
  EXPECT_FALSE(CrossEntropyForward(logits, targets, -0.1, kIgnore, nullptr).ok());
  EXPECT_FALSE(CrossEntropyForward(logits, targets, 1.5, kIgnore, nullptr).ok());
  CrossEntropySaved missing;
  EXPECT_FALSE(CrossEntropyBackward(logits, targets, 0, kIgnore, missing, 1.0).ok());
  CrossEntropySaved wrong{.logsumexp = Tensor::Zeros({3}, DType::kF32)};
  EXPECT_FALSE(CrossEntropyBackward(logits, targets, 0, kIgnore, wrong, 1.0).ok());
  CrossEntropySaved ok{.logsumexp = Tensor::Zeros({3}, DType::kF64)};
  EXPECT_TRUE(CrossEntropyBackward(logits, targets, 0, kIgnore, ok, 1.0).ok());
  EXPECT_FALSE(CrossEntropyBackward(logits, targets, 0, kIgnore, ok, std::nan("")).ok());
}

}  // namespace
}  // namespace pipetrain::ops
