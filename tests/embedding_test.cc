#include "core/ops/embedding.h"

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

using ::pipetrain::testing::IsInvalid;
using ::pipetrain::testing::MaxAbsDiff;
using ::pipetrain::testing::Minus;
using ::pipetrain::testing::NumericGradient;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RecordError;
using ::pipetrain::testing::RelativeError;
using ::pipetrain::testing::WeightedSum;

TEST(EmbeddingTest, ForwardLooksUpAndScalesRows) {
  Tensor table = RandomTensor({7, 5}, 1);
  Tensor ids = Tensor::FromInts({3, 0, 6, 3, 2, 3}, {2, 3});
  auto y = EmbeddingForward(ids, table, 2.5);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 3, 5}));
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t id = ids.At(i);
    for (int64_t j = 0; j < 5; ++j) {
      EXPECT_DOUBLE_EQ(y->At(i * 5 + j), 2.5 * table.At(id * 5 + j)) << i << "," << j;
    }
  }
}

TEST(EmbeddingTest, BackwardWeightMatchesFiniteDifferencesAndAccumulates) {
  Tensor table = RandomTensor({6, 4}, 10);
  // Repeated ids: their gradients must add up; id 5 is never used.
  Tensor ids = Tensor::FromInts({1, 4, 1, 0, 2, 1, 4, 3}, {2, 4});
  Tensor dy = RandomTensor({2, 4, 4}, 11);
  const double scale = 1.7;
  auto loss = [&] { return WeightedSum(*EmbeddingForward(ids, table, scale), dy); };
  Tensor numeric = NumericGradient(loss, table);

  Tensor dtable0 = RandomTensor({6, 4}, 12);
  Tensor dtable = dtable0.Clone();
  ASSERT_TRUE(EmbeddingBackwardWeight(ids, dy, scale, dtable).ok());
  const double err = RelativeError(Minus(dtable, dtable0), numeric);
  RecordError("rel_err_dtable", err);
  EXPECT_LT(err, 1e-6);
  // The unused row keeps exactly its old gradient.
  for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(dtable.At(5 * 4 + j), dtable0.At(5 * 4 + j));
}

TEST(EmbeddingTest, Float32AgreesWithFloat64) {
  Tensor table = RandomTensor({11, 8}, 20);
  Tensor ids = Tensor::FromInts({10, 0, 3, 3, 7, 1}, {6});
  Tensor dy = RandomTensor({6, 8}, 21);
  auto y64 = EmbeddingForward(ids, table, 0.5);
  auto y32 = EmbeddingForward(ids, table.To(DType::kF32), 0.5);
  ASSERT_TRUE(y64.ok() && y32.ok());
  EXPECT_EQ(y32->dtype(), DType::kF32);
  EXPECT_LT(MaxAbsDiff(y32->To(DType::kF64), *y64), 1e-6);

  Tensor d64 = Tensor::Zeros({11, 8}, DType::kF64), d32 = Tensor::Zeros({11, 8}, DType::kF32);
  ASSERT_TRUE(EmbeddingBackwardWeight(ids, dy, 0.5, d64).ok());
  ASSERT_TRUE(EmbeddingBackwardWeight(ids, dy.To(DType::kF32), 0.5, d32).ok());
  EXPECT_LT(MaxAbsDiff(d32.To(DType::kF64), d64), 1e-6);
}

TEST(EmbeddingTest, BackwardIsIndependentOfThreadCount) {
  // Many tokens over a small vocabulary, so rows collide often.
  std::vector<int32_t> id_values(4096);
  for (size_t i = 0; i < id_values.size(); ++i) id_values[i] = (i * 7919) % 13;
  Tensor ids = Tensor::FromInts(id_values, {4096});
  Tensor dy = RandomTensor({4096, 96}, 30).To(DType::kF32);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor d = Tensor::Zeros({13, 96}, DType::kF32);
    EXPECT_TRUE(EmbeddingBackwardWeight(ids, dy, 0.3, d).ok());
    return d;
  };
  const int saved = omp_get_max_threads();
  Tensor one = run(1), two = run(2);
  omp_set_num_threads(saved);
  EXPECT_EQ(std::memcmp(one.raw_data(), two.raw_data(), one.nbytes()), 0);
}

TEST(EmbeddingTest, OutOfRangeIdNamesTheIdAndItsPosition) {
  Tensor table = RandomTensor({5, 3}, 40);
  Tensor ids = Tensor::FromInts({0, 1, 2, 4, 3, 9}, {2, 3});
  auto y = EmbeddingForward(ids, table, 1.0);
  ASSERT_TRUE(IsInvalid(y.status())) << y.status();
  EXPECT_NE(y.status().message().find("id 9"), absl::string_view::npos) << y.status();
  EXPECT_NE(y.status().message().find("[1,2]"), absl::string_view::npos) << y.status();

  Tensor negative = Tensor::FromInts({0, -1}, {2});
  auto y2 = EmbeddingForward(negative, table, 1.0);
  ASSERT_TRUE(IsInvalid(y2.status()));
  EXPECT_NE(y2.status().message().find("id -1"), absl::string_view::npos) << y2.status();

  // The backward checks too, and leaves dtable untouched when it fails.
  Tensor dtable = Tensor::Zeros({5, 3}, DType::kF64);
  EXPECT_TRUE(IsInvalid(EmbeddingBackwardWeight(ids, RandomTensor({2, 3, 3}, 1), 1.0, dtable)));
  EXPECT_EQ(dtable.At(0), 0.0);
}

TEST(EmbeddingTest, BadShapesAndDtypesAreInvalidArgument) {
  Tensor table = RandomTensor({5, 3}, 50);
  Tensor ids = Tensor::FromInts({0, 1}, {2});
  EXPECT_TRUE(IsInvalid(EmbeddingForward(Tensor::FromVector({0, 1}, {2}, DType::kF32), table, 1)
                            .status()));                                             // f32 ids
  EXPECT_TRUE(IsInvalid(EmbeddingForward(ids, RandomTensor({15}, 1), 1).status()));  // rank 1
  EXPECT_TRUE(IsInvalid(EmbeddingForward(ids, Tensor::FromInts({1, 2}, {1, 2}), 1).status()));

  Tensor dtable = Tensor::Zeros({5, 3}, DType::kF64);
  EXPECT_TRUE(IsInvalid(EmbeddingBackwardWeight(ids, RandomTensor({2, 4}, 1), 1, dtable)));
  EXPECT_TRUE(IsInvalid(EmbeddingBackwardWeight(ids, RandomTensor({3, 3}, 1), 1, dtable)));
  EXPECT_TRUE(
      IsInvalid(EmbeddingBackwardWeight(ids, RandomTensor({2, 3}, 1).To(DType::kF32), 1, dtable)));
}

// pe[t, 2i] = sin(t / 10000^(2i/d)), pe[t, 2i+1] = cos(t / 10000^(2i/d)).
double Position(int64_t t, int64_t j, int64_t d) {
  const int64_t two_i = j - j % 2;
  const double denom = std::exp(std::log(10000.0) * static_cast<double>(two_i) / d);
  return j % 2 == 0 ? std::sin(t / denom) : std::cos(t / denom);
}

TEST(EmbeddingTest, SinusoidalPositionsAreAddedPerTimeStep) {
  for (int64_t d : {6, 7}) {  // an odd width ends on a sine feature
    Tensor x0 = RandomTensor({2, 5, d}, 60);
    Tensor x = x0.Clone();
    ASSERT_TRUE(AddSinusoidalPositions(x).ok());
    for (int64_t b = 0; b < 2; ++b) {
      for (int64_t t = 0; t < 5; ++t) {
        for (int64_t j = 0; j < d; ++j) {
          const int64_t i = (b * 5 + t) * d + j;
          EXPECT_NEAR(x.At(i) - x0.At(i), Position(t, j, d), 1e-14) << b << t << j;
        }
      }
    }
  }
  // Hand values: position 0 is (0, 1, 0, 1); feature 0 of position t is sin t,
  // features 2 and 3 of width 4 use 10000^(2/4) = 100.
  Tensor x = Tensor::Zeros({1, 4, 4}, DType::kF32);
  ASSERT_TRUE(AddSinusoidalPositions(x).ok());
  EXPECT_EQ(x.At(0), 0.0);
  EXPECT_EQ(x.At(1), 1.0);
  EXPECT_NEAR(x.At(3 * 4 + 0), std::sin(3.0), 1e-7);
  EXPECT_NEAR(x.At(3 * 4 + 1), std::cos(3.0), 1e-7);
  EXPECT_NEAR(x.At(3 * 4 + 2), std::sin(0.03), 1e-7);
  EXPECT_NEAR(x.At(3 * 4 + 3), std::cos(0.03), 1e-7);

  Tensor flat = Tensor::Zeros({4, 4}, DType::kF32);
  EXPECT_TRUE(IsInvalid(AddSinusoidalPositions(flat)));
  Tensor ints = Tensor::FromInts({1, 2}, {1, 1, 2});
  EXPECT_TRUE(IsInvalid(AddSinusoidalPositions(ints)));
}

}  // namespace
}  // namespace pipetrain::ops
