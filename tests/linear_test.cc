#include "core/ops/linear.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using ::pipetrain::testing::MaxAbsDiff;
using ::pipetrain::testing::Minus;
using ::pipetrain::testing::NumericGradient;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RecordError;
using ::pipetrain::testing::RelativeError;
using ::pipetrain::testing::WeightedSum;

// y[r, o] = Σ_i x[r, i]·w[o, i] + b[o], by the definition.
Tensor NaiveLinear(const Tensor& x, const Tensor& w, const Tensor* b) {
  const int64_t out = w.dim(0), in = w.dim(1), rows = x.numel() / in;
  Shape shape = x.shape();
  shape.back() = out;
  Tensor y = Tensor::Zeros(shape, DType::kF64);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? b->At(o) : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x.At(r * in + i) * w.At(o * in + i);
      y.data<double>()[r * out + o] = s;
    }
  }
  return y;
}

// Tensor a − b, in f64.
TEST(LinearTest, ForwardMatchesNaiveWithAndWithoutBias) {
  Tensor x = RandomTensor({2, 3, 5}, 1);
  Tensor w = RandomTensor({4, 5}, 2);
  Tensor b = RandomTensor({4}, 3);
  auto y = LinearForward(x, w, &b);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 3, 4}));
  EXPECT_LT(MaxAbsDiff(*y, NaiveLinear(x, w, &b)), 1e-12);

  auto y_nobias = LinearForward(x, w, nullptr);
  ASSERT_TRUE(y_nobias.ok()) << y_nobias.status();
  EXPECT_LT(MaxAbsDiff(*y_nobias, NaiveLinear(x, w, nullptr)), 1e-12);
  // The bias must actually have been added in the first call.
  EXPECT_GT(MaxAbsDiff(*y, *y_nobias), 1e-3);
}

TEST(LinearTest, HandWorkedExample) {
  // x = [1 2], w = [[1 0], [0 1], [1 1]], b = [10 20 30] → y = [11 22 33].
  Tensor x = Tensor::FromVector({1, 2}, {1, 2}, DType::kF32);
  Tensor w = Tensor::FromVector({1, 0, 0, 1, 1, 1}, {3, 2}, DType::kF32);
  Tensor b = Tensor::FromVector({10, 20, 30}, {3}, DType::kF32);
  auto y = LinearForward(x, w, &b);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->ToVector(), (std::vector<double>{11, 22, 33}));
}

TEST(LinearTest, BackwardInputMatchesFiniteDifferences) {
  Tensor x = RandomTensor({3, 2, 6}, 10);
  Tensor w = RandomTensor({5, 6}, 11);
  Tensor b = RandomTensor({5}, 12);
  Tensor dy = RandomTensor({3, 2, 5}, 13);
  auto loss = [&] { return WeightedSum(*LinearForward(x, w, &b), dy); };
  Tensor numeric = NumericGradient(loss, x);
  auto dx = LinearBackwardInput(dy, w);
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_EQ(dx->shape(), x.shape());
  const double err = RelativeError(*dx, numeric);
  RecordError("rel_err_dx", err);
  EXPECT_LT(err, 1e-6);
}

TEST(LinearTest, BackwardWeightMatchesFiniteDifferencesAndAccumulates) {
  Tensor x = RandomTensor({4, 6}, 20);
  Tensor w = RandomTensor({3, 6}, 21);
  Tensor b = RandomTensor({3}, 22);
  Tensor dy = RandomTensor({4, 3}, 23);
  auto loss = [&] { return WeightedSum(*LinearForward(x, w, &b), dy); };
  Tensor numeric_w = NumericGradient(loss, w);
  Tensor numeric_b = NumericGradient(loss, b);

  // Start from non-zero gradients: the op must add onto them.
  Tensor dw0 = RandomTensor({3, 6}, 24);
  Tensor db0 = RandomTensor({3}, 25);
  Tensor dw = dw0.Clone(), db = db0.Clone();
  ASSERT_TRUE(LinearBackwardWeight(x, dy, dw, &db).ok());
  const double err_w = RelativeError(Minus(dw, dw0), numeric_w);
  const double err_b = RelativeError(Minus(db, db0), numeric_b);
  RecordError("rel_err_dw", err_w);
  RecordError("rel_err_db", err_b);
  EXPECT_LT(err_w, 1e-6);
  EXPECT_LT(err_b, 1e-6);

  // Without db only dw moves; a second call adds a second copy.
  Tensor dw2 = dw0.Clone();
  ASSERT_TRUE(LinearBackwardWeight(x, dy, dw2, nullptr).ok());
  ASSERT_TRUE(LinearBackwardWeight(x, dy, dw2, nullptr).ok());
  Tensor twice = Minus(dw2, dw0);
  for (int64_t i = 0; i < twice.numel(); ++i) {
    EXPECT_NEAR(twice.At(i), 2 * numeric_w.At(i), 1e-6) << i;
  }
}

TEST(LinearTest, Float32AgreesWithFloat64) {
  Tensor x = RandomTensor({7, 16}, 30);
  Tensor w = RandomTensor({9, 16}, 31);
  Tensor b = RandomTensor({9}, 32);
  Tensor dy = RandomTensor({7, 9}, 33);
  Tensor x32 = x.To(DType::kF32), w32 = w.To(DType::kF32), b32 = b.To(DType::kF32);
  Tensor dy32 = dy.To(DType::kF32);

  auto y64 = LinearForward(x, w, &b);
  auto y32 = LinearForward(x32, w32, &b32);
  ASSERT_TRUE(y64.ok() && y32.ok());
  EXPECT_EQ(y32->dtype(), DType::kF32);
  EXPECT_LT(MaxAbsDiff(y32->To(DType::kF64), *y64), 1e-5);

  auto dx64 = LinearBackwardInput(dy, w);
  auto dx32 = LinearBackwardInput(dy32, w32);
  ASSERT_TRUE(dx64.ok() && dx32.ok());
  EXPECT_LT(MaxAbsDiff(dx32->To(DType::kF64), *dx64), 1e-5);

  Tensor dw64 = Tensor::Zeros({9, 16}, DType::kF64), db64 = Tensor::Zeros({9}, DType::kF64);
  Tensor dw32 = Tensor::Zeros({9, 16}, DType::kF32), db32 = Tensor::Zeros({9}, DType::kF32);
  ASSERT_TRUE(LinearBackwardWeight(x, dy, dw64, &db64).ok());
  ASSERT_TRUE(LinearBackwardWeight(x32, dy32, dw32, &db32).ok());
  EXPECT_LT(MaxAbsDiff(dw32.To(DType::kF64), dw64), 1e-5);
  EXPECT_LT(MaxAbsDiff(db32.To(DType::kF64), db64), 1e-5);
}

TEST(LinearTest, EmptyBatchGivesEmptyOutputs) {
  Tensor x = Tensor::Zeros({0, 4}, DType::kF32);
  Tensor w = Tensor::FromVector(std::vector<double>(12, 1.0), {3, 4}, DType::kF32);
  auto y = LinearForward(x, w, nullptr);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{0, 3}));
  Tensor dw = Tensor::Zeros({3, 4}, DType::kF32);
  ASSERT_TRUE(LinearBackwardWeight(x, Tensor::Zeros({0, 3}, DType::kF32), dw, nullptr).ok());
  EXPECT_EQ(dw.At(0), 0.0);
}

TEST(LinearTest, BiasGradientIsIndependentOfThreadCount) {
  // Large enough for the parallel path.
  Tensor x = RandomTensor({512, 8}, 40).To(DType::kF32);
  Tensor dy = RandomTensor({512, 300}, 41).To(DType::kF32);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor dw = Tensor::Zeros({300, 8}, DType::kF32), db = Tensor::Zeros({300}, DType::kF32);
    EXPECT_TRUE(LinearBackwardWeight(x, dy, dw, &db).ok());
    return db;
  };
  const int saved = omp_get_max_threads();
  Tensor one = run(1), two = run(2);
  omp_set_num_threads(saved);
  EXPECT_EQ(std::memcmp(one.raw_data(), two.raw_data(), one.nbytes()), 0);
}

TEST(LinearTest, BadShapesAndDtypesAreInvalidArgument) {
  Tensor x = RandomTensor({2, 5}, 50);
  Tensor w = RandomTensor({4, 5}, 51);
  Tensor b = RandomTensor({4}, 52);
  Tensor dy = RandomTensor({2, 4}, 53);
  auto invalid = [](const absl::Status& s) {
    return s.code() == absl::StatusCode::kInvalidArgument;
  };

  EXPECT_TRUE(invalid(LinearForward(RandomTensor({2, 6}, 1), w, &b).status()));  // in mismatch
  EXPECT_TRUE(invalid(LinearForward(x, RandomTensor({20}, 1), &b).status()));    // w rank 1
  Tensor b_bad = RandomTensor({5}, 1);
  EXPECT_TRUE(invalid(LinearForward(x, w, &b_bad).status()));              // b size
  EXPECT_TRUE(invalid(LinearForward(x.To(DType::kF32), w, &b).status()));  // dtype mix
  Tensor b32 = b.To(DType::kF32);
  EXPECT_TRUE(invalid(LinearForward(x, w, &b32).status()));
  EXPECT_TRUE(invalid(LinearForward(Tensor::FromInts({1, 2}, {1, 2}), w, nullptr).status()));
  EXPECT_TRUE(invalid(LinearForward(Tensor(), w, nullptr).status()));  // undefined

  EXPECT_TRUE(invalid(LinearBackwardInput(RandomTensor({2, 5}, 1), w).status()));
  EXPECT_TRUE(invalid(LinearBackwardInput(dy.To(DType::kF32), w).status()));

  Tensor dw = Tensor::Zeros({4, 5}, DType::kF64), db = Tensor::Zeros({4}, DType::kF64);
  EXPECT_TRUE(invalid(LinearBackwardWeight(x, RandomTensor({3, 4}, 1), dw, &db)));  // rows
  EXPECT_TRUE(invalid(LinearBackwardWeight(x, RandomTensor({2, 5}, 1), dw, &db)));  // out
  Tensor dw_bad = Tensor::Zeros({4, 6}, DType::kF64);
  EXPECT_TRUE(invalid(LinearBackwardWeight(x, dy, dw_bad, &db)));
  Tensor db_bad = Tensor::Zeros({4}, DType::kF32);
  EXPECT_TRUE(invalid(LinearBackwardWeight(x, dy, dw, &db_bad)));
  Tensor dw32 = Tensor::Zeros({4, 5}, DType::kF32);
  EXPECT_TRUE(invalid(LinearBackwardWeight(x, dy, dw32, nullptr)));
  // A failed call leaves the gradients untouched.
  EXPECT_EQ(dw.At(0), 0.0);

  auto status = LinearForward(RandomTensor({2, 6}, 1), w, nullptr).status();
  EXPECT_NE(status.message().find("[4,5]"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace pipetrain::ops
