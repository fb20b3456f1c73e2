#include "core/ops/activation.h"

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
using ::pipetrain::testing::NumericGradient;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RecordError;
using ::pipetrain::testing::RelativeError;
using ::pipetrain::testing::WeightedSum;

// Random inputs kept at least 0.01 away from ReLU's kink, so central
// differences with h = 1e-5 never straddle it.
Tensor AwayFromZero(const Shape& shape, uint64_t seed) {
  Tensor x = RandomTensor(shape, seed, 2.0);
  for (double& v : x.span<double>()) {
    if (std::abs(v) < 0.01) v = v < 0 ? -0.01 : 0.01;
  }
  return x;
}

TEST(ActivationTest, GeluKnownValues) {
  // x·Φ(x) with Φ(1) = 0.8413447460685429, Φ(2) = 0.9772498680518208.
  Tensor x = Tensor::FromVector({0, 1, -1, 2, -2}, {5}, DType::kF64);
  auto y = ActivationForward(ActivationKind::kGelu, x);
  ASSERT_TRUE(y.ok()) << y.status();
  const std::vector<double> want = {0, 0.8413447460685429, -0.15865525393145707,
                                    2 * 0.9772498680518208, -2 * (1 - 0.9772498680518208)};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(y->At(i), want[i], 1e-15) << i;
  // Not the tanh approximation: at x = 1 that gives 0.8411919906.
  EXPECT_GT(std::abs(y->At(1) - 0.8411919906), 1e-4);
}

TEST(ActivationTest, ReluKnownValues) {
  Tensor x = Tensor::FromVector({-3, -0.5, 0, 0.25, 7}, {5}, DType::kF32);
  auto y = ActivationForward(ActivationKind::kRelu, x);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->ToVector(), (std::vector<double>{0, 0, 0, 0.25, 7}));
  auto dx = ActivationBackward(ActivationKind::kRelu, x,
                               Tensor::FromVector({1, 2, 3, 4, 5}, {5}, DType::kF32));
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_EQ(dx->ToVector(), (std::vector<double>{0, 0, 0, 4, 5}));
}

class ActivationKindTest : public ::testing::TestWithParam<ActivationKind> {};

TEST_P(ActivationKindTest, ForwardMatchesDefinition) {
  Tensor x = RandomTensor({4, 5, 3}, 1, 2.0);
  auto y = ActivationForward(GetParam(), x);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.At(i);
    const double want = GetParam() == ActivationKind::kGelu
                            ? 0.5 * v * std::erfc(-v / std::sqrt(2.0))
                            : std::max(v, 0.0);
    EXPECT_NEAR(y->At(i), want, 1e-14) << i;
  }
}

TEST_P(ActivationKindTest, BackwardMatchesFiniteDifferences) {
  Tensor x = AwayFromZero({3, 8}, 10);
  Tensor dy = RandomTensor({3, 8}, 11);
  auto loss = [&] { return WeightedSum(*ActivationForward(GetParam(), x), dy); };
  Tensor numeric = NumericGradient(loss, x);
  auto dx = ActivationBackward(GetParam(), x, dy);
  ASSERT_TRUE(dx.ok()) << dx.status();
  const double err = RelativeError(*dx, numeric);
  RecordError(GetParam() == ActivationKind::kGelu ? "rel_err_dx_gelu" : "rel_err_dx_relu", err);
  EXPECT_LT(err, 1e-6);
}

TEST_P(ActivationKindTest, Float32AgreesWithFloat64) {
  Tensor x = AwayFromZero({6, 16}, 20);
  Tensor dy = RandomTensor({6, 16}, 21);
  auto y64 = ActivationForward(GetParam(), x);
  auto y32 = ActivationForward(GetParam(), x.To(DType::kF32));
  ASSERT_TRUE(y64.ok() && y32.ok());
  EXPECT_EQ(y32->dtype(), DType::kF32);
  EXPECT_LT(MaxAbsDiff(y32->To(DType::kF64), *y64), 1e-5);
  auto dx64 = ActivationBackward(GetParam(), x, dy);
  auto dx32 = ActivationBackward(GetParam(), x.To(DType::kF32), dy.To(DType::kF32));
  ASSERT_TRUE(dx64.ok() && dx32.ok());
  EXPECT_LT(MaxAbsDiff(dx32->To(DType::kF64), *dx64), 1e-5);
}

TEST_P(ActivationKindTest, BadArgumentsAreInvalidArgument) {
  Tensor x = RandomTensor({2, 3}, 30);
  EXPECT_TRUE(IsInvalid(ActivationForward(GetParam(), Tensor::FromInts({1}, {1})).status()));
  EXPECT_TRUE(IsInvalid(ActivationForward(GetParam(), Tensor()).status()));
  EXPECT_TRUE(IsInvalid(ActivationBackward(GetParam(), x, RandomTensor({3, 2}, 1)).status()));
  EXPECT_TRUE(IsInvalid(ActivationBackward(GetParam(), x, x.To(DType::kF32)).status()));
}

INSTANTIATE_TEST_SUITE_P(Kinds, ActivationKindTest,
                         ::testing::Values(ActivationKind::kGelu, ActivationKind::kRelu),
                         [](const ::testing::TestParamInfo<ActivationKind>& info) {
                           return std::string(info.param == ActivationKind::kGelu ? "Gelu"
                                                                                  : "Relu");
                         });

TEST(ActivationTest, UnknownKindIsInvalidArgument) {
  const auto bogus = static_cast<ActivationKind>(7);
  Tensor x = RandomTensor({2}, 40);
  EXPECT_TRUE(IsInvalid(ActivationForward(bogus, x).status()));
  EXPECT_TRUE(IsInvalid(ActivationBackward(bogus, x, x).status()));
}

}  // namespace
}  // namespace pipetrain::ops
