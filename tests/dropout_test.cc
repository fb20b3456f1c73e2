#include "core/ops/dropout.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/philox.h"
#include "core/philox_core.h"
#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using testing::NumericGradient;
using testing::RandomTensor;
using testing::RelativeError;
using testing::WeightedSum;

const RngKey kKey{.seed = 11, .step = 4, .layer = 2, .microbatch = 1, .site = 3};

TEST(DropoutTest, KeepRateAndScaleMatchP) {
  const int64_t n = 200000;
  for (double p : {0.1, 0.3, 0.5}) {
    Tensor x = Tensor::Empty({n}, DType::kF64);
    x.Fill(2.0);
    auto y = DropoutForward(x, p, kKey);
    ASSERT_TRUE(y.ok()) << y.status();
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double value = y->At(i);
      if (value != 0.0) {
        ++kept;
        ASSERT_DOUBLE_EQ(value, 2.0 / (1.0 - p)) << "element " << i;
      }
    }
    // Binomial standard deviation of the kept fraction is about 1e-3 here.
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 0.005) << "p = " << p;
  }
}

TEST(DropoutTest, MaskIsThePhiloxStreamOfTheKey) {
  const double p = 0.25;
  Tensor x = RandomTensor({7, 9}, 1);
  auto y = DropoutForward(x, p, kKey);
  ASSERT_TRUE(y.ok()) << y.status();
  PhiloxStream stream(kKey);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double expected = stream.Uniform(i) < p ? 0.0 : x.At(i) / (1.0 - p);
    EXPECT_DOUBLE_EQ(y->At(i), expected) << "element " << i;
  }
}

TEST(DropoutTest, BackwardUsesTheSameMask) {
  const double p = 0.4;
  Tensor x = RandomTensor({5, 8}, 2);
  Tensor w = RandomTensor({5, 8}, 3);
  auto y = DropoutForward(x, p, kKey);
  auto dx = DropoutBackward(w, p, kKey);
  ASSERT_TRUE(y.ok() && dx.ok());
  int dropped = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    EXPECT_EQ(y->At(i) == 0.0, dx->At(i) == 0.0) << "element " << i;
    dropped += y->At(i) == 0.0;
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, x.numel());
  // And it is the gradient of Σ w ⊙ dropout(x).
  auto loss = [&] { return WeightedSum(*DropoutForward(x, p, kKey), w); };
  Tensor numeric = NumericGradient(loss, x);
  const double error = RelativeError(*dx, numeric);
  std::printf("[grad] dropout dx relative error %.3g\n", error);
  EXPECT_LT(error, 1e-6);
}

TEST(DropoutTest, DeterministicInKeyAndThreadCount) {
  Tensor x = RandomTensor({100000}, 4);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor a = *DropoutForward(x, 0.3, kKey);
  omp_set_num_threads(std::max(2, threads));
  Tensor b = *DropoutForward(x, 0.3, kKey);
  omp_set_num_threads(threads);
  EXPECT_EQ(a.ToVector(), b.ToVector());
  RngKey next = kKey;
  next.step += 1;
  Tensor c = *DropoutForward(x, 0.3, next);
  EXPECT_NE(a.ToVector(), c.ToVector());
}

TEST(DropoutTest, ZeroProbabilityReturnsTheInputItself) {
  Tensor x = RandomTensor({3, 4}, 5);
  auto y = DropoutForward(x, 0.0, kKey);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->raw_data(), x.raw_data());
  auto dx = DropoutBackward(x, 0.0, kKey);
  ASSERT_TRUE(dx.ok());
  EXPECT_EQ(dx->raw_data(), x.raw_data());
}

TEST(DropoutTest, FloatAndDoubleAgree) {
  Tensor x = RandomTensor({64, 33}, 6);
  Tensor y64 = *DropoutForward(x, 0.2, kKey);
  Tensor y32 = *DropoutForward(x.To(DType::kF32), 0.2, kKey);
  ASSERT_EQ(y32.dtype(), DType::kF32);
  for (int64_t i = 0; i < x.numel(); ++i) {
    EXPECT_NEAR(y32.At(i), y64.At(i), 1e-6 * (1.0 + std::abs(y64.At(i)))) << "element " << i;
  }
}

TEST(DropoutTest, RejectsBadArguments) {
  Tensor x = RandomTensor({4}, 7);
  for (double p : {-0.1, 1.0, 1.5, std::nan("")}) {
    auto y = DropoutForward(x, p, kKey);
    EXPECT_EQ(y.status().code(), absl::StatusCode::kInvalidArgument) << "p = " << p;
    EXPECT_FALSE(DropoutBackward(x, p, kKey).ok()) << "p = " << p;
  }
  auto ints = DropoutForward(Tensor::FromInts({1, 2}, {2}), 0.5, kKey);
  EXPECT_EQ(ints.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ints.status().message().find("i32"), absl::string_view::npos) << ints.status();
  EXPECT_FALSE(DropoutForward(Tensor(), 0.5, kKey).ok());
}

// The host half of the CPU/GPU bitwise guarantee: the CUDA kernel decides with
// philox::Dropped(StreamWordsOf(key), i, p) from philox_core.h, the CPU with
// PhiloxStream::Uniform(i) < p. Both must agree on every element of every key.
TEST(DropoutTest, PhiloxCoreDecisionEqualsPhiloxStream) {
  const RngKey keys[] = {
      kKey,
      RngKey{.seed = 0, .step = 0, .layer = 0, .microbatch = 0, .site = 0},
      RngKey{.seed = 0xFFFFFFFFFFFFFFFFull, .step = 0xFFFFFFFFu, .layer = 47, .microbatch = 7,
             .site = 4095},
      RngKey{.seed = 1234567890123ull, .step = 100000, .layer = 5, .microbatch = 1000, .site = 1},
  };
  for (const RngKey& key : keys) {
    const PhiloxStream stream(key);
    const philox::StreamWords words = StreamWordsOf(key);
    // Dense indices, then indices past 2^32 (the second counter word).
    for (uint64_t base : {uint64_t{0}, (uint64_t{1} << 32) - 8, uint64_t{1} << 40}) {
      for (uint64_t i = base; i < base + 20000; ++i) {
        const float u = stream.Uniform(i);
        ASSERT_EQ(philox::Uniform(words, i), u) << "index " << i;
        for (double p : {0.1, 0.5, 0.9}) {
          ASSERT_EQ(philox::Dropped(words, i, p), static_cast<double>(u) < p)
              << "index " << i << ", p = " << p;
        }
      }
    }
  }
}

}  // namespace
}  // namespace pipetrain::ops
