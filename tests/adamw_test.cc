#include "core/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain {
namespace {

using testing::RandomTensor;

TEST(AdamWTest, TwoStepsMatchHandComputation) {
  // lr 0.1, β1 0.9, β2 0.99, ε 1e-8, wd 0.01; p0 = 1, g1 = 0.5, g2 = −0.25.
  // Step 1: m = 0.05, v = 0.0025, m̂ = 0.5, v̂ = 0.25,
  //         p1 = 1 − 0.1·(0.5/(0.5 + 1e-8) + 0.01·1) = 0.899000002 (to 1e-16).
  // Step 2: m = 0.045 − 0.025 = 0.02, v = 0.002475 + 0.000625 = 0.0031,
  //         m̂ = 0.02/0.19 = 2/19, v̂ = 0.0031/0.0199 = 31/199,
  //         p2 = p1 − 0.1·((2/19)/(sqrt(31/199) + 1e-8) + 0.01·p1) = 0.87143105976593...
  const AdamWHyper hyper{
      .lr = 0.1, .beta1 = 0.9, .beta2 = 0.99, .epsilon = 1e-8, .weight_decay = 0.01};
  for (DType dtype : {DType::kF64, DType::kF32}) {
    const double tol = dtype == DType::kF64 ? 1e-14 : 1e-7;
    Tensor p = Tensor::FromVector({1.0}, {1}, dtype);
    Tensor m = Tensor::Zeros({1}, dtype), v = Tensor::Zeros({1}, dtype);
    ASSERT_TRUE(AdamWStep(hyper, 1, p, Tensor::FromVector({0.5}, {1}, dtype), m, v).ok());
    EXPECT_NEAR(m.At(0), 0.05, tol);
    EXPECT_NEAR(v.At(0), 0.0025, tol);
    EXPECT_NEAR(p.At(0), 0.899000002, tol);
    ASSERT_TRUE(AdamWStep(hyper, 2, p, Tensor::FromVector({-0.25}, {1}, dtype), m, v).ok());
    EXPECT_NEAR(m.At(0), 0.02, tol);
    EXPECT_NEAR(v.At(0), 0.0031, tol);
    EXPECT_NEAR(p.At(0), 0.8714310597659335, tol) << DTypeName(dtype);
  }
}

TEST(AdamWTest, MatchesTheFormulaOverManySteps) {
  const AdamWHyper hyper{
      .lr = 3e-3, .beta1 = 0.9, .beta2 = 0.98, .epsilon = 1e-6, .weight_decay = 0.1};
  const int64_t n = 1000;
  const Tensor initial = RandomTensor({n}, 1);
  Tensor p64 = initial.Clone();
  Tensor p32 = p64.To(DType::kF32);
  Tensor m64 = Tensor::Zeros({n}, DType::kF64), v64 = Tensor::Zeros({n}, DType::kF64);
  Tensor m32 = Tensor::Zeros({n}, DType::kF32), v32 = Tensor::Zeros({n}, DType::kF32);
  std::vector<double> p = p64.ToVector(), m(n, 0.0), v(n, 0.0);
  for (int64_t step = 1; step <= 6; ++step) {
    Tensor g = RandomTensor({n}, 100 + step, 0.1);
    ASSERT_TRUE(AdamWStep(hyper, step, p64, g, m64, v64).ok());
    ASSERT_TRUE(AdamWStep(hyper, step, p32, g.To(DType::kF32), m32, v32).ok());
    for (int64_t i = 0; i < n; ++i) {
      const double gi = g.At(i);
      m[i] = hyper.beta1 * m[i] + (1 - hyper.beta1) * gi;
      v[i] = hyper.beta2 * v[i] + (1 - hyper.beta2) * gi * gi;
      const double m_hat = m[i] / (1 - std::pow(hyper.beta1, step));
      const double v_hat = v[i] / (1 - std::pow(hyper.beta2, step));
      p[i] -= hyper.lr * (m_hat / (std::sqrt(v_hat) + hyper.epsilon) + hyper.weight_decay * p[i]);
    }
  }
  double moved = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(p64.At(i), p[i], 1e-14) << "element " << i;
    ASSERT_NEAR(p32.At(i), p[i], 1e-6) << "element " << i;
    ASSERT_NEAR(m64.At(i), m[i], 1e-16) << "element " << i;
    ASSERT_NEAR(v64.At(i), v[i], 1e-18) << "element " << i;
    moved = std::max(moved, std::abs(p[i] - initial.At(i)));
  }
  EXPECT_GT(moved, 1e-3);  // the steps did something
}

TEST(AdamWTest, ZeroGradientLeavesOnlyTheDecoupledDecay) {
  const AdamWHyper hyper{.lr = 0.5, .weight_decay = 0.2};
  Tensor p = Tensor::FromVector({2.0, -4.0}, {2}, DType::kF64);
  Tensor m = Tensor::Zeros({2}, DType::kF64), v = Tensor::Zeros({2}, DType::kF64);
  ASSERT_TRUE(AdamWStep(hyper, 1, p, Tensor::Zeros({2}, DType::kF64), m, v).ok());
  // p·(1 − lr·wd) = p·0.9, independent of the gradient's scale.
  EXPECT_DOUBLE_EQ(p.At(0), 1.8);
  EXPECT_DOUBLE_EQ(p.At(1), -3.6);
}

TEST(AdamWTest, RejectsBadArguments) {
  Tensor p = Tensor::Zeros({4}, DType::kF32), g = Tensor::Zeros({4}, DType::kF32);
  Tensor m = Tensor::Zeros({4}, DType::kF32), v = Tensor::Zeros({4}, DType::kF32);
  const AdamWHyper ok;
  EXPECT_TRUE(AdamWStep(ok, 1, p, g, m, v).ok());
  EXPECT_FALSE(AdamWStep(ok, 0, p, g, m, v).ok());
  Tensor short_m = Tensor::Zeros({3}, DType::kF32);
  auto status = AdamWStep(ok, 1, p, g, short_m, v);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("m is"), absl::string_view::npos) << status;
  Tensor g64 = Tensor::Zeros({4}, DType::kF64);
  EXPECT_FALSE(AdamWStep(ok, 1, p, g64, m, v).ok());
  Tensor ints = Tensor::FromInts({0, 0, 0, 0}, {4});
  EXPECT_FALSE(AdamWStep(ok, 1, ints, ints, ints, ints).ok());
  Tensor unset;
  EXPECT_FALSE(AdamWStep(ok, 1, p, g, unset, v).ok());
  for (AdamWHyper bad : {AdamWHyper{.lr = -1}, AdamWHyper{.beta1 = 1.0}, AdamWHyper{.beta2 = -0.1},
                         AdamWHyper{.epsilon = 0}, AdamWHyper{.weight_decay = -0.1},
                         AdamWHyper{.lr = std::nan("")}}) {
    EXPECT_FALSE(AdamWStep(bad, 1, p, g, m, v).ok());
  }
}

}  // namespace
}  // namespace pipetrain
