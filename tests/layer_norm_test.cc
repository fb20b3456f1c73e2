#include "core/ops/layer_norm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
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

constexpr double kEps = 1e-5;

// Row mean and σ = sqrt(var + eps), written out the long way.
void NaiveStats(const Tensor& x, int64_t r, double eps, double* mean, double* sigma) {
  const int64_t d = x.dim(-1);
  double s = 0;
  for (int64_t j = 0; j < d; ++j) s += x.At(r * d + j);
  *mean = s / d;
  double v = 0;
  for (int64_t j = 0; j < d; ++j) v += (x.At(r * d + j) - *mean) * (x.At(r * d + j) - *mean);
  *sigma = std::sqrt(v / d + eps);
}

// (x − mean)/σ^p · γ + β; γ = null means 1 and β = null means 0.
Tensor NaiveNorm(const Tensor& x, const Tensor* gamma, const Tensor* beta, double p, double eps) {
  const int64_t d = x.dim(-1), rows = x.numel() / d;
  Tensor y = Tensor::Empty(x.shape(), DType::kF64);
  for (int64_t r = 0; r < rows; ++r) {
    double mean, sigma;
    NaiveStats(x, r, eps, &mean, &sigma);
    for (int64_t j = 0; j < d; ++j) {
      double v = (x.At(r * d + j) - mean) / std::pow(sigma, p);
      if (gamma) v = v * gamma->At(j) + beta->At(j);
      y.data<double>()[r * d + j] = v;
    }
  }
  return y;
}

TEST(LayerNormTest, ForwardMatchesNaiveAndSavesStatistics) {
  Tensor x = RandomTensor({2, 3, 8}, 1, 3.0);
  Tensor gamma = RandomTensor({8}, 2), beta = RandomTensor({8}, 3);
  LayerNormSaved saved;
  auto y = LayerNormForward(x, gamma, beta, kEps, &saved);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_LT(MaxAbsDiff(*y, NaiveNorm(x, &gamma, &beta, 1.0, kEps)), 1e-12);
  ASSERT_EQ(saved.mean.shape(), (Shape{6}));
  ASSERT_EQ(saved.rstd.shape(), (Shape{6}));
  for (int64_t r = 0; r < 6; ++r) {
    double mean, sigma;
    NaiveStats(x, r, kEps, &mean, &sigma);
    EXPECT_NEAR(saved.mean.At(r), mean, 1e-13);
    EXPECT_NEAR(saved.rstd.At(r), 1 / sigma, 1e-13);
  }
  // Without a saved struct the output is the same.
  auto y2 = LayerNormForward(x, gamma, beta, kEps, nullptr);
  ASSERT_TRUE(y2.ok());
  EXPECT_EQ(MaxAbsDiff(*y, *y2), 0.0);
}

TEST(LayerNormTest, HandWorkedExample) {
  // x = [1 2 3 4]: mean 2.5, var 1.25; eps = 0 gives x̂ = [−3 −1 1 3]/sqrt(5).
  Tensor x = Tensor::FromVector({1, 2, 3, 4}, {1, 4}, DType::kF32);
  Tensor gamma = Tensor::FromVector({1, 1, 2, 2}, {4}, DType::kF32);
  Tensor beta = Tensor::FromVector({0, 1, 0, 1}, {4}, DType::kF32);
  auto y = LayerNormForward(x, gamma, beta, 0.0, nullptr);
  ASSERT_TRUE(y.ok()) << y.status();
  const double s = std::sqrt(5.0);
  EXPECT_NEAR(y->At(0), -3 / s, 1e-6);
  EXPECT_NEAR(y->At(1), -1 / s + 1, 1e-6);
  EXPECT_NEAR(y->At(2), 2 / s, 1e-6);
  EXPECT_NEAR(y->At(3), 6 / s + 1, 1e-6);
}

TEST(LayerNormTest, BackwardInputMatchesFiniteDifferences) {
  Tensor x = RandomTensor({3, 7}, 10, 2.0);
  Tensor gamma = RandomTensor({7}, 11), beta = RandomTensor({7}, 12);
  Tensor dy = RandomTensor({3, 7}, 13);
  auto loss = [&] { return WeightedSum(*LayerNormForward(x, gamma, beta, kEps, nullptr), dy); };
  Tensor numeric = NumericGradient(loss, x);
  LayerNormSaved saved;
  ASSERT_TRUE(LayerNormForward(x, gamma, beta, kEps, &saved).ok());
  auto dx = LayerNormBackwardInput(x, gamma, saved, dy);
  ASSERT_TRUE(dx.ok()) << dx.status();
  const double err = RelativeError(*dx, numeric);
  RecordError("rel_err_dx", err);
  EXPECT_LT(err, 1e-6);
}

TEST(LayerNormTest, BackwardWeightMatchesFiniteDifferencesAndAccumulates) {
  Tensor x = RandomTensor({4, 6}, 20, 2.0);
  Tensor gamma = RandomTensor({6}, 21), beta = RandomTensor({6}, 22);
  Tensor dy = RandomTensor({4, 6}, 23);
  auto loss = [&] { return WeightedSum(*LayerNormForward(x, gamma, beta, kEps, nullptr), dy); };
  Tensor numeric_g = NumericGradient(loss, gamma);
  Tensor numeric_b = NumericGradient(loss, beta);
  LayerNormSaved saved;
  ASSERT_TRUE(LayerNormForward(x, gamma, beta, kEps, &saved).ok());
  Tensor dgamma0 = RandomTensor({6}, 24), dbeta0 = RandomTensor({6}, 25);
  Tensor dgamma = dgamma0.Clone(), dbeta = dbeta0.Clone();
  ASSERT_TRUE(LayerNormBackwardWeight(x, saved, dy, dgamma, dbeta).ok());
  const double err_g = RelativeError(Minus(dgamma, dgamma0), numeric_g);
  const double err_b = RelativeError(Minus(dbeta, dbeta0), numeric_b);
  RecordError("rel_err_dgamma", err_g);
  RecordError("rel_err_dbeta", err_b);
  EXPECT_LT(err_g, 1e-6);
  EXPECT_LT(err_b, 1e-6);
}

TEST(LayerNormTest, Float32AgreesWithFloat64) {
  Tensor x = RandomTensor({5, 32}, 30, 4.0);
  Tensor gamma = RandomTensor({32}, 31), beta = RandomTensor({32}, 32);
  Tensor dy = RandomTensor({5, 32}, 33);
  LayerNormSaved s64, s32;
  auto y64 = LayerNormForward(x, gamma, beta, kEps, &s64);
  auto y32 =
      LayerNormForward(x.To(DType::kF32), gamma.To(DType::kF32), beta.To(DType::kF32), kEps, &s32);
  ASSERT_TRUE(y64.ok() && y32.ok());
  EXPECT_EQ(y32->dtype(), DType::kF32);
  EXPECT_EQ(s32.rstd.dtype(), DType::kF32);
  EXPECT_LT(MaxAbsDiff(y32->To(DType::kF64), *y64), 1e-5);

  auto dx64 = LayerNormBackwardInput(x, gamma, s64, dy);
  auto dx32 =
      LayerNormBackwardInput(x.To(DType::kF32), gamma.To(DType::kF32), s32, dy.To(DType::kF32));
  ASSERT_TRUE(dx64.ok() && dx32.ok());
  EXPECT_LT(MaxAbsDiff(dx32->To(DType::kF64), *dx64), 1e-5);

  Tensor dg64 = Tensor::Zeros({32}, DType::kF64), db64 = Tensor::Zeros({32}, DType::kF64);
  Tensor dg32 = Tensor::Zeros({32}, DType::kF32), db32 = Tensor::Zeros({32}, DType::kF32);
  ASSERT_TRUE(LayerNormBackwardWeight(x, s64, dy, dg64, db64).ok());
  ASSERT_TRUE(LayerNormBackwardWeight(x.To(DType::kF32), s32, dy.To(DType::kF32), dg32, db32).ok());
  EXPECT_LT(MaxAbsDiff(dg32.To(DType::kF64), dg64), 1e-5);
  EXPECT_LT(MaxAbsDiff(db32.To(DType::kF64), db64), 1e-5);
}

TEST(LayerNormTest, WeightGradientsAreIndependentOfThreadCount) {
  Tensor x = RandomTensor({256, 160}, 40).To(DType::kF32);
  Tensor dy = RandomTensor({256, 160}, 41).To(DType::kF32);
  Tensor gamma = Tensor::Zeros({160}, DType::kF32), beta = Tensor::Zeros({160}, DType::kF32);
  gamma.Fill(1.0);
  LayerNormSaved saved;
  ASSERT_TRUE(LayerNormForward(x, gamma, beta, kEps, &saved).ok());
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor dg = Tensor::Zeros({160}, DType::kF32), db = Tensor::Zeros({160}, DType::kF32);
    EXPECT_TRUE(LayerNormBackwardWeight(x, saved, dy, dg, db).ok());
    return std::make_pair(dg, db);
  };
  const int threads = omp_get_max_threads();
  auto one = run(1), two = run(2);
  omp_set_num_threads(threads);
  EXPECT_EQ(std::memcmp(one.first.raw_data(), two.first.raw_data(), one.first.nbytes()), 0);
  EXPECT_EQ(std::memcmp(one.second.raw_data(), two.second.raw_data(), one.second.nbytes()), 0);
}

TEST(LayerNormTest, BadArgumentsAreInvalidArgument) {
  Tensor x = RandomTensor({2, 4}, 50);
  Tensor gamma = RandomTensor({4}, 51), beta = RandomTensor({4}, 52);
  Tensor dy = RandomTensor({2, 4}, 53);
  EXPECT_TRUE(IsInvalid(LayerNormForward(x, RandomTensor({5}, 1), beta, kEps, nullptr).status()));
  EXPECT_TRUE(
      IsInvalid(LayerNormForward(x, gamma, RandomTensor({2, 2}, 1), kEps, nullptr).status()));
  EXPECT_TRUE(IsInvalid(LayerNormForward(x, gamma.To(DType::kF32), beta, kEps, nullptr).status()));
  EXPECT_TRUE(IsInvalid(LayerNormForward(x, gamma, beta, -1.0, nullptr).status()));
  EXPECT_TRUE(IsInvalid(LayerNormForward(x, gamma, beta, NAN, nullptr).status()));
  EXPECT_TRUE(
      IsInvalid(LayerNormForward(Tensor::FromInts({1, 2, 3, 4}, {1, 4}), gamma, beta, kEps, nullptr)
                    .status()));

  LayerNormSaved empty;  // never filled: an error, not a crash
  EXPECT_TRUE(IsInvalid(LayerNormBackwardInput(x, gamma, empty, dy).status()));
  LayerNormSaved other;  // statistics of a different batch
  ASSERT_TRUE(LayerNormForward(RandomTensor({3, 4}, 1), gamma, beta, kEps, &other).ok());
  EXPECT_TRUE(IsInvalid(LayerNormBackwardInput(x, gamma, other, dy).status()));
  LayerNormSaved saved;
  ASSERT_TRUE(LayerNormForward(x, gamma, beta, kEps, &saved).ok());
  EXPECT_TRUE(IsInvalid(LayerNormBackwardInput(x, gamma, saved, RandomTensor({2, 5}, 1)).status()));

  Tensor dg = Tensor::Zeros({4}, DType::kF64), db = Tensor::Zeros({4}, DType::kF64);
  Tensor db_bad = Tensor::Zeros({4}, DType::kF32);
  EXPECT_TRUE(IsInvalid(LayerNormBackwardWeight(x, saved, dy, dg, db_bad)));
  Tensor dg_bad = Tensor::Zeros({3}, DType::kF64);
  EXPECT_TRUE(IsInvalid(LayerNormBackwardWeight(x, saved, dy, dg_bad, db)));
  EXPECT_TRUE(IsInvalid(LayerNormBackwardWeight(x, other, dy, dg, db)));
  EXPECT_EQ(dg.At(0), 0.0);
}

// ---- PowerNorm ----

class PowerNormPowerTest : public ::testing::TestWithParam<double> {};

TEST_P(PowerNormPowerTest, ForwardMatchesNaive) {
  const double p = GetParam();
  Tensor x = RandomTensor({3, 2, 9}, 60, 3.0);
  PowerNormSaved saved;
  auto y = PowerNormForward(x, p, kEps, &saved);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_LT(MaxAbsDiff(*y, NaiveNorm(x, nullptr, nullptr, p, kEps)), 1e-12);
  EXPECT_EQ(saved.power, p);
  for (int64_t r = 0; r < 6; ++r) {
    double mean, sigma;
    NaiveStats(x, r, kEps, &mean, &sigma);
    EXPECT_NEAR(saved.mean.At(r), mean, 1e-13);
    EXPECT_NEAR(saved.sigma.At(r), sigma, 1e-13);
  }
}

TEST_P(PowerNormPowerTest, BackwardMatchesFiniteDifferences) {
  const double p = GetParam();
  // Scale 3 keeps σ far from 1, so σ^−p really depends on p.
  Tensor x = RandomTensor({4, 7}, 70, 3.0);
  Tensor dy = RandomTensor({4, 7}, 71);
  auto loss = [&] { return WeightedSum(*PowerNormForward(x, p, kEps, nullptr), dy); };
  Tensor numeric = NumericGradient(loss, x);
  PowerNormSaved saved;
  ASSERT_TRUE(PowerNormForward(x, p, kEps, &saved).ok());
  auto dx = PowerNormBackward(x, saved, dy);
  ASSERT_TRUE(dx.ok()) << dx.status();
  const double err = RelativeError(*dx, numeric);
  RecordError(absl::StrFormat("rel_err_dx_p%g", p), err);
  EXPECT_LT(err, 1e-6);
}

TEST_P(PowerNormPowerTest, Float32AgreesWithFloat64) {
  const double p = GetParam();
  Tensor x = RandomTensor({5, 24}, 80, 3.0);
  Tensor dy = RandomTensor({5, 24}, 81);
  PowerNormSaved s64, s32;
  auto y64 = PowerNormForward(x, p, kEps, &s64);
  auto y32 = PowerNormForward(x.To(DType::kF32), p, kEps, &s32);
  ASSERT_TRUE(y64.ok() && y32.ok());
  EXPECT_LT(MaxAbsDiff(y32->To(DType::kF64), *y64), 1e-5);
  auto dx64 = PowerNormBackward(x, s64, dy);
  auto dx32 = PowerNormBackward(x.To(DType::kF32), s32, dy.To(DType::kF32));
  ASSERT_TRUE(dx64.ok() && dx32.ok());
  EXPECT_LT(MaxAbsDiff(dx32->To(DType::kF64), *dx64), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Powers, PowerNormPowerTest, ::testing::Values(0.0, 0.3, 1.0));

TEST(PowerNormTest, PowerZeroOnlyCentres) {
  Tensor x = Tensor::FromVector({1, 2, 6, 3, 3, 3}, {2, 3}, DType::kF64);
  auto y = PowerNormForward(x, 0.0, kEps, nullptr);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->ToVector(), (std::vector<double>{-2, -1, 3, 0, 0, 0}));
}

TEST(PowerNormTest, PowerOneIsLayerNormWithoutAffine) {
  Tensor x = RandomTensor({3, 10}, 90, 2.0);
  Tensor dy = RandomTensor({3, 10}, 91);
  Tensor gamma = Tensor::Zeros({10}, DType::kF64), beta = Tensor::Zeros({10}, DType::kF64);
  gamma.Fill(1.0);
  LayerNormSaved ln_saved;
  PowerNormSaved pn_saved;
  auto ln = LayerNormForward(x, gamma, beta, kEps, &ln_saved);
  auto pn = PowerNormForward(x, 1.0, kEps, &pn_saved);
  ASSERT_TRUE(ln.ok() && pn.ok());
  EXPECT_LT(MaxAbsDiff(*pn, *ln), 1e-14);
  auto ln_dx = LayerNormBackwardInput(x, gamma, ln_saved, dy);
  auto pn_dx = PowerNormBackward(x, pn_saved, dy);
  ASSERT_TRUE(ln_dx.ok() && pn_dx.ok());
  EXPECT_LT(MaxAbsDiff(*pn_dx, *ln_dx), 1e-13);
}

TEST(PowerNormTest, BadArgumentsAreInvalidArgument) {
  Tensor x = RandomTensor({2, 4}, 100);
  EXPECT_TRUE(IsInvalid(PowerNormForward(x, 1.5, kEps, nullptr).status()));
  EXPECT_TRUE(IsInvalid(PowerNormForward(x, -0.1, kEps, nullptr).status()));
  EXPECT_TRUE(IsInvalid(PowerNormForward(x, 0.5, -1.0, nullptr).status()));
  EXPECT_TRUE(
      IsInvalid(PowerNormForward(Tensor::FromInts({1, 2}, {2}), 0.5, kEps, nullptr).status()));
  EXPECT_TRUE(
      IsInvalid(PowerNormForward(Tensor::Zeros({2, 0}, DType::kF64), 0.5, kEps, nullptr).status()));

  PowerNormSaved saved;
  ASSERT_TRUE(PowerNormForward(x, 0.5, kEps, &saved).ok());
  EXPECT_TRUE(IsInvalid(PowerNormBackward(x, saved, RandomTensor({4, 2}, 1)).status()));
  EXPECT_TRUE(
      IsInvalid(PowerNormBackward(x, saved, RandomTensor({2, 4}, 1).To(DType::kF32)).status()));
  EXPECT_TRUE(IsInvalid(PowerNormBackward(RandomTensor({4, 2}, 1), saved, x).status()));
  PowerNormSaved bad_power = saved;
  bad_power.power = 2.0;
  EXPECT_TRUE(IsInvalid(PowerNormBackward(x, bad_power, x).status()));
  EXPECT_TRUE(IsInvalid(PowerNormBackward(x, PowerNormSaved{}, x).status()));
}

}  // namespace
}  // namespace pipetrain::ops
