// The comparison helpers of tests/testing/grad_check.h must be able to fail:
// every op and layer test trusts them, and std::max drops a NaN, so before
// these checks an all-NaN gradient measured as error 0 and passed.
#include "tests/testing/grad_check.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

using ::pipetrain::testing::MaxAbsDiff;
using ::pipetrain::testing::NumericGradient;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RelativeError;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The messages of the failures `body` reports, kept from the running test:
// unlike EXPECT_NONFATAL_FAILURE this also counts them, so a test can show
// that a caller's own EXPECT_LT on the result fails as well.
std::vector<std::string> FailuresOf(const std::function<void()>& body) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    body();
  }
  std::vector<std::string> messages;
  for (int i = 0; i < results.size(); ++i) {
    if (results.GetTestPartResult(i).failed()) {
      messages.push_back(results.GetTestPartResult(i).message());
    }
  }
  return messages;
}

// L = Σ w ⊙ x³, whose gradient 3·w ⊙ x² is known exactly, so each test below
// starts from a gradient that is right and breaks one thing.
class GradCheckTest : public ::testing::Test {
 protected:
  static constexpr double kTol = 1e-6;

  double Loss() const {
    double s = 0;
    for (int64_t i = 0; i < x_.numel(); ++i) s += w_.At(i) * std::pow(x_.At(i), 3);
    return s;
  }
  Tensor Analytic() const {
    Tensor g = Tensor::Empty(x_.shape(), DType::kF64);
    for (int64_t i = 0; i < x_.numel(); ++i) {
      g.data<double>()[i] = 3 * w_.At(i) * x_.At(i) * x_.At(i);
    }
    return g;
  }
  Tensor Numeric() {
    return NumericGradient([this] { return Loss(); }, x_);
  }

  Tensor x_ = RandomTensor({3, 4}, 1);
  Tensor w_ = RandomTensor({3, 4}, 2);
};

TEST_F(GradCheckTest, CorrectGradientPasses) {
  const Tensor analytic = Analytic(), numeric = Numeric();
  double err = kNaN;
  EXPECT_THAT(FailuresOf([&] { err = RelativeError(analytic, numeric); }), SizeIs(0));
  EXPECT_LT(err, kTol);
  EXPECT_THAT(FailuresOf([&] { err = MaxAbsDiff(analytic, analytic.Clone()); }), SizeIs(0));
  EXPECT_EQ(err, 0.0);
}

TEST_F(GradCheckTest, OneNaNInTheAnalyticGradientFails) {
  Tensor analytic = Analytic();
  analytic.data<double>()[5] = kNaN;
  const Tensor numeric = Numeric();
  double err = 0;
  EXPECT_THAT(FailuresOf([&] { err = RelativeError(analytic, numeric); }),
              ElementsAre(AllOf(HasSubstr("element 5"), HasSubstr("analytic[5] = nan"))));
  EXPECT_TRUE(std::isnan(err));
}

TEST_F(GradCheckTest, AllNaNGradientFailsOnceAndFailsTheCallersCheck) {
  Tensor analytic = Analytic();
  analytic.Fill(kNaN);
  const Tensor numeric = Numeric();
  // The helper reports the first bad element, and the NaN it returns makes
  // the caller's usual `EXPECT_LT(RelativeError(...), tol)` fail too.
  EXPECT_THAT(FailuresOf([&] { EXPECT_LT(RelativeError(analytic, numeric), kTol); }),
              ElementsAre(HasSubstr("element 0 is not finite"), HasSubstr("RelativeError")));
  // A check that expects a large error must not pass on NaN either.
  EXPECT_THAT(FailuresOf([&] { EXPECT_GT(RelativeError(analytic, numeric), 1e-3); }), SizeIs(2));
}

TEST_F(GradCheckTest, NaNInTheNumericGradientFails) {
  // √x at 0: the lower probe is √(−h) = NaN, so the finite difference of
  // element 7 is NaN (printed "-nan" on glibc) while the analytic gradient
  // claims a finite value.
  x_.data<double>()[7] = 0;
  const Tensor analytic = Analytic();
  const Tensor numeric =
      NumericGradient([this] { return Loss() + std::sqrt(x_.data<double>()[7]); }, x_);
  EXPECT_THAT(FailuresOf([&] { RelativeError(analytic, numeric); }),
              ElementsAre(AllOf(HasSubstr("element 7"), ContainsRegex("numeric\\[7\\] = -?nan"))));
}

TEST_F(GradCheckTest, InfFails) {
  const Tensor numeric = Numeric();
  Tensor analytic = Analytic();
  analytic.data<double>()[2] = kInf;
  EXPECT_THAT(FailuresOf([&] { EXPECT_TRUE(std::isnan(RelativeError(analytic, numeric))); }),
              ElementsAre(AllOf(HasSubstr("element 2"), HasSubstr("analytic[2] = inf"))));
  // An Inf on the numeric side once made the scale infinite and the error 0.
  Tensor bad_numeric = numeric.Clone();
  bad_numeric.data<double>()[9] = -kInf;
  EXPECT_THAT(FailuresOf([&] { RelativeError(Analytic(), bad_numeric); }),
              ElementsAre(AllOf(HasSubstr("element 9"), HasSubstr("numeric[9] = -inf"))));
}

TEST_F(GradCheckTest, WrongButFiniteGradientFails) {
  Tensor analytic = Analytic();
  for (int64_t i = 0; i < analytic.numel(); ++i) analytic.data<double>()[i] *= 2.0 / 3.0;
  const Tensor numeric = Numeric();
  double err = 0;
  // Finite values are no failure of the helper itself: the error is measured
  // and it is the caller's tolerance that rejects it.
  EXPECT_THAT(FailuresOf([&] { err = RelativeError(analytic, numeric); }), SizeIs(0));
  EXPECT_TRUE(std::isfinite(err));
  EXPECT_GT(err, 0.1);
  EXPECT_NONFATAL_FAILURE(EXPECT_LT(RelativeError(analytic, numeric), kTol), "kTol");
}

TEST_F(GradCheckTest, DifferentElementCountsFail) {
  const Tensor numeric = Numeric();
  EXPECT_NONFATAL_FAILURE(RelativeError(numeric.View(0, {5}), numeric), "5 elements");
}

TEST(MaxAbsDiffTest, NonFiniteValuesFailNamingTheElement) {
  const Tensor a = RandomTensor({2, 5}, 3);
  Tensor b = a.Clone();
  b.data<double>()[4] = kNaN;
  double diff = 0;
  EXPECT_THAT(FailuresOf([&] { diff = MaxAbsDiff(a, b); }),
              ElementsAre(AllOf(HasSubstr("element 4"), HasSubstr("b[4] = nan"))));
  EXPECT_TRUE(std::isnan(diff));

  // NaN on both sides: every |a − b| is NaN, which std::max used to drop,
  // so `EXPECT_EQ(MaxAbsDiff(y, y2), 0.0)` passed.
  Tensor all_nan = a.Clone();
  all_nan.Fill(kNaN);
  EXPECT_THAT(FailuresOf([&] { EXPECT_EQ(MaxAbsDiff(all_nan, all_nan), 0.0); }),
              ElementsAre(HasSubstr("element 0 is not finite"), HasSubstr("MaxAbsDiff")));

  Tensor with_inf = a.Clone();
  with_inf.data<double>()[8] = kInf;
  EXPECT_NONFATAL_FAILURE(MaxAbsDiff(with_inf, with_inf), "a[8] = inf");
}

TEST(MaxAbsDiffTest, DifferentShapesFail) {
  const Tensor a = RandomTensor({2, 5}, 3);
  double diff = 0;
  EXPECT_NONFATAL_FAILURE(diff = MaxAbsDiff(a, a.Reshape({5, 2})), "shapes differ");
  EXPECT_TRUE(std::isnan(diff));
}

}  // namespace
}  // namespace pipetrain
