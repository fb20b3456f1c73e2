#include "core/ops/attention.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "core/philox.h"
#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using testing::NumericGradient;
using testing::RandomTensor;
using testing::RelativeError;
using testing::WeightedSum;

const RngKey kKey{.seed = 5, .step = 9, .layer = 3, .microbatch = 2, .site = 1};

struct Case {
  std::string name;
  int64_t batch, tq, tk, heads, head_dim;
  bool causal;
  std::vector<int32_t> lengths;  // empty: no padding
  double dropout;
};

// Names the case in failure messages instead of dumping its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

AttentionOptions OptionsOf(const Case& c, const RngKey& rng = kKey) {
  AttentionOptions options;
  options.heads = static_cast<int>(c.heads);
  options.causal = c.causal;
  if (!c.lengths.empty()) {
    options.key_lengths = Tensor::FromInts(c.lengths, {static_cast<int64_t>(c.lengths.size())});
  }
  options.dropout = c.dropout;
  options.rng = rng;
  return options;
}

struct Reference {
  std::vector<double> context;  // [B, Tq, H·Dh]
  std::vector<double> probs;    // [B, H, Tq, Tk]
};

// The definition, one scalar at a time: no GEMMs, no shared code with the op.
Reference NaiveAttention(const Tensor& q, const Tensor& k, const Tensor& v, const Case& c) {
  const int64_t width = c.heads * c.head_dim;
  Reference ref;
  ref.context.assign(c.batch * c.tq * width, 0.0);
  ref.probs.assign(c.batch * c.heads * c.tq * c.tk, 0.0);
  PhiloxStream stream(kKey);
  for (int64_t b = 0; b < c.batch; ++b) {
    const int64_t len = c.lengths.empty() ? c.tk : c.lengths[b];
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t i = 0; i < c.tq; ++i) {
        std::vector<double> score(c.tk, -INFINITY);
        double max = -INFINITY;
        for (int64_t j = 0; j < c.tk; ++j) {
          if (j >= len || (c.causal && j > i)) continue;
          double s = 0;
          for (int64_t d = 0; d < c.head_dim; ++d) {
            s += q.At((b * c.tq + i) * width + h * c.head_dim + d) *
                 k.At((b * c.tk + j) * width + h * c.head_dim + d);
          }
          score[j] = s / std::sqrt(static_cast<double>(c.head_dim));
          max = std::max(max, score[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < c.tk; ++j) sum += std::exp(score[j] - max);
        for (int64_t j = 0; j < c.tk; ++j) {
          const int64_t index = ((b * c.heads + h) * c.tq + i) * c.tk + j;
          const double p = std::exp(score[j] - max) / sum;
          ref.probs[index] = p;
          const bool dropped = c.dropout > 0 && stream.Uniform(index) < c.dropout;
          const double weight = dropped ? 0.0 : p / (1.0 - c.dropout);
          for (int64_t d = 0; d < c.head_dim; ++d) {
            ref.context[(b * c.tq + i) * width + h * c.head_dim + d] +=
                weight * v.At((b * c.tk + j) * width + h * c.head_dim + d);
          }
        }
      }
    }
  }
  return ref;
}

class AttentionCaseTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    const int64_t width = c.heads * c.head_dim;
    q_ = RandomTensor({c.batch, c.tq, width}, 1);
    k_ = RandomTensor({c.batch, c.tk, width}, 2);
    v_ = RandomTensor({c.batch, c.tk, width}, 3);
    w_ = RandomTensor({c.batch, c.tq, width}, 4);
  }
  Tensor q_, k_, v_, w_;
};

TEST_P(AttentionCaseTest, ForwardMatchesNaiveReference) {
  const Case& c = GetParam();
  AttentionSaved saved;
  auto context = AttentionForward(q_, k_, v_, OptionsOf(c), &saved);
  ASSERT_TRUE(context.ok()) << context.status();
  const Reference ref = NaiveAttention(q_, k_, v_, c);
  ASSERT_EQ(context->shape(), q_.shape());
  ASSERT_EQ(saved.probs.shape(), (Shape{c.batch, c.heads, c.tq, c.tk}));
  for (int64_t i = 0; i < context->numel(); ++i) {
    ASSERT_NEAR(context->At(i), ref.context[i], 1e-12) << "context element " << i;
  }
  for (int64_t i = 0; i < saved.probs.numel(); ++i) {
    ASSERT_NEAR(saved.probs.At(i), ref.probs[i], 1e-13) << "probs element " << i;
    // Masked keys get exactly zero, not a tiny exp().
    if (ref.probs[i] == 0.0) {
      ASSERT_EQ(saved.probs.At(i), 0.0) << "probs element " << i;
    }
  }
}

TEST_P(AttentionCaseTest, BackwardMatchesFiniteDifferences) {
  const Case& c = GetParam();
  const AttentionOptions options = OptionsOf(c);
  AttentionSaved saved;
  ASSERT_TRUE(AttentionForward(q_, k_, v_, options, &saved).ok());
  Tensor dq, dk, dv;
  ASSERT_TRUE(AttentionBackward(q_, k_, v_, options, saved, w_, &dq, &dk, &dv).ok());
  auto loss = [&] { return WeightedSum(*AttentionForward(q_, k_, v_, options, nullptr), w_); };
  const double eq = RelativeError(dq, NumericGradient(loss, q_));
  const double ek = RelativeError(dk, NumericGradient(loss, k_));
  const double ev = RelativeError(dv, NumericGradient(loss, v_));
  std::printf("[grad] attention %s: dq %.3g dk %.3g dv %.3g\n", c.name.c_str(), eq, ek, ev);
  EXPECT_LT(eq, 1e-6);
  EXPECT_LT(ek, 1e-6);
  EXPECT_LT(ev, 1e-6);
  // Padded keys have exactly zero gradient.
  const int64_t width = c.heads * c.head_dim;
  for (int64_t b = 0; b < static_cast<int64_t>(c.lengths.size()); ++b) {
    for (int64_t j = c.lengths[b]; j < c.tk; ++j) {
      for (int64_t d = 0; d < width; ++d) {
        ASSERT_EQ(dk.At((b * c.tk + j) * width + d), 0.0) << "batch " << b << " key " << j;
        ASSERT_EQ(dv.At((b * c.tk + j) * width + d), 0.0) << "batch " << b << " key " << j;
      }
    }
  }
}

TEST_P(AttentionCaseTest, FloatAgreesWithDouble) {
  const Case& c = GetParam();
  const AttentionOptions options = OptionsOf(c);
  AttentionSaved s64, s32;
  Tensor c64 = *AttentionForward(q_, k_, v_, options, &s64);
  const Tensor q32 = q_.To(DType::kF32), k32 = k_.To(DType::kF32), v32 = v_.To(DType::kF32);
  auto c32 = AttentionForward(q32, k32, v32, options, &s32);
  ASSERT_TRUE(c32.ok()) << c32.status();
  ASSERT_EQ(c32->dtype(), DType::kF32);
  for (int64_t i = 0; i < c64.numel(); ++i) ASSERT_NEAR(c32->At(i), c64.At(i), 1e-5) << i;
  Tensor dq64, dk64, dv64, dq32, dk32, dv32;
  ASSERT_TRUE(AttentionBackward(q_, k_, v_, options, s64, w_, &dq64, &dk64, &dv64).ok());
  ASSERT_TRUE(
      AttentionBackward(q32, k32, v32, options, s32, w_.To(DType::kF32), &dq32, &dk32, &dv32).ok());
  EXPECT_LT(RelativeError(dq32, dq64), 1e-5);
  EXPECT_LT(RelativeError(dk32, dk64), 1e-5);
  EXPECT_LT(RelativeError(dv32, dv64), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionCaseTest,
                         ::testing::Values(Case{"SelfCausal", 2, 5, 5, 2, 3, true, {}, 0.0},
                                           Case{"SelfPadded", 2, 5, 5, 2, 3, false, {5, 2}, 0.0},
                                           Case{"CausalPadded", 2, 6, 6, 3, 2, true, {3, 6}, 0.0},
                                           Case{"CrossPadded", 2, 3, 6, 3, 2, false, {6, 2}, 0.0},
                                           Case{"OneKey", 1, 4, 1, 2, 2, false, {}, 0.0},
                                           Case{"CausalDropout", 2, 5, 5, 2, 3, true, {5, 4}, 0.3},
                                           Case{"CrossDropout", 2, 4, 5, 2, 2, false, {3, 5}, 0.3}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(AttentionTest, DropoutIsAFunctionOfTheKey) {
  const Case c{"", 2, 8, 8, 2, 4, true, {}, 0.3};
  Tensor q = RandomTensor({2, 8, 8}, 11), k = RandomTensor({2, 8, 8}, 12),
         v = RandomTensor({2, 8, 8}, 13);
  AttentionSaved s1, s2, s3;
  Tensor a = *AttentionForward(q, k, v, OptionsOf(c), &s1);
  Tensor b = *AttentionForward(q, k, v, OptionsOf(c), &s2);
  RngKey next = kKey;
  next.step += 1;
  Tensor other = *AttentionForward(q, k, v, OptionsOf(c, next), &s3);
  EXPECT_EQ(a.ToVector(), b.ToVector());
  EXPECT_NE(a.ToVector(), other.ToVector());
  // The saved probabilities are taken before dropout: the same for both keys,
  // and each row is a distribution.
  EXPECT_EQ(s1.probs.ToVector(), s3.probs.ToVector());
  for (int64_t row = 0; row < 2 * 2 * 8; ++row) {
    double sum = 0;
    for (int64_t j = 0; j < 8; ++j) sum += s1.probs.At(row * 8 + j);
    EXPECT_NEAR(sum, 1.0, 1e-12) << "row " << row;
  }
}

TEST(AttentionTest, ResultsDoNotDependOnThreadCount) {
  const Case c{"", 3, 24, 24, 4, 16, true, {24, 7, 15}, 0.1};
  const int64_t width = 64;
  Tensor q = RandomTensor({3, 24, width}, 14).To(DType::kF32);
  Tensor k = RandomTensor({3, 24, width}, 15).To(DType::kF32);
  Tensor v = RandomTensor({3, 24, width}, 16).To(DType::kF32);
  Tensor w = RandomTensor({3, 24, width}, 17).To(DType::kF32);
  const AttentionOptions options = OptionsOf(c);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    AttentionSaved saved;
    Tensor context = *AttentionForward(q, k, v, options, &saved);
    Tensor dq, dk, dv;
    EXPECT_TRUE(AttentionBackward(q, k, v, options, saved, w, &dq, &dk, &dv).ok());
    return std::vector<std::vector<double>>{context.ToVector(), dq.ToVector(), dk.ToVector(),
                                            dv.ToVector()};
  };
  const int threads = omp_get_max_threads();
  const int blas_threads = openblas_get_num_threads();
  const auto serial = run(1);
  const auto parallel = run(std::max(2, threads));
  omp_set_num_threads(threads);
  EXPECT_EQ(serial, parallel);
  // The op lowers OpenBLAS's thread count while it runs; it must give it back.
  EXPECT_EQ(openblas_get_num_threads(), blas_threads);
}

TEST(AttentionTest, BackwardReplacesPreviousOutputs) {
  const Case c{"", 1, 3, 3, 1, 2, false, {}, 0.0};
  Tensor q = RandomTensor({1, 3, 2}, 18), k = RandomTensor({1, 3, 2}, 19),
         v = RandomTensor({1, 3, 2}, 20);
  AttentionSaved saved;
  ASSERT_TRUE(AttentionForward(q, k, v, OptionsOf(c), &saved).ok());
  // dcontext shares storage with the tensor dq held before the call.
  Tensor dcontext = RandomTensor({1, 3, 2}, 21);
  Tensor dq = dcontext, dk = Tensor::Zeros({7}, DType::kF32), dv;
  const std::vector<double> dcontext_before = dcontext.ToVector();
  ASSERT_TRUE(AttentionBackward(q, k, v, OptionsOf(c), saved, dcontext, &dq, &dk, &dv).ok());
  EXPECT_EQ(dcontext.ToVector(), dcontext_before);
  EXPECT_NE(dq.raw_data(), dcontext.raw_data());
  EXPECT_EQ(dk.shape(), k.shape());
  EXPECT_EQ(dk.dtype(), DType::kF64);
}

TEST(AttentionTest, RejectsBadInputs) {
  Tensor q = RandomTensor({2, 4, 6}, 1), k = RandomTensor({2, 5, 6}, 2),
         v = RandomTensor({2, 5, 6}, 3);
  AttentionOptions options;
  options.heads = 2;
  ASSERT_TRUE(AttentionForward(q, k, v, options, nullptr).ok());

  auto expect_error = [&](const AttentionOptions& o, const Tensor& qq, const Tensor& kk,
                          const Tensor& vv, const std::string& needle) {
    auto r = AttentionForward(qq, kk, vv, o, nullptr);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_NE(std::string(r.status().message()).find(needle), std::string::npos) << r.status();
  };
  AttentionOptions o = options;
  o.heads = 4;  // 6 is not divisible by 4
  expect_error(o, q, k, v, "heads");
  o = options;
  o.heads = 0;
  expect_error(o, q, k, v, "heads");
  o = options;
  o.causal = true;  // Tq = 4, Tk = 5
  expect_error(o, q, k, v, "causal");
  o = options;
  o.dropout = 1.0;
  expect_error(o, q, k, v, "dropout");
  o = options;
  o.key_lengths = Tensor::FromInts({5, 0}, {2});
  expect_error(o, q, k, v, "key_lengths[1] = 0");
  o.key_lengths = Tensor::FromInts({6, 1}, {2});
  expect_error(o, q, k, v, "key_lengths[0] = 6");
  o.key_lengths = Tensor::FromInts({5}, {1});
  expect_error(o, q, k, v, "key_lengths");
  o.key_lengths = Tensor::FromVector({5, 5}, {2}, DType::kF64);
  expect_error(o, q, k, v, "key_lengths");
  expect_error(options, q, k, RandomTensor({2, 4, 6}, 4), "same shape");
  expect_error(options, q, RandomTensor({2, 5, 8}, 5), RandomTensor({2, 5, 8}, 5), "k");
  expect_error(options, q, RandomTensor({3, 5, 6}, 5), RandomTensor({3, 5, 6}, 5), "k");
  expect_error(options, q.Reshape({8, 6}), k, v, "[B, T, H·Dh]");
  expect_error(options, q.To(DType::kF32), k, v, "dtype");
  expect_error(options, Tensor::FromInts(std::vector<int32_t>(48, 0), {2, 4, 6}),
               Tensor::FromInts(std::vector<int32_t>(60, 0), {2, 5, 6}),
               Tensor::FromInts(std::vector<int32_t>(60, 0), {2, 5, 6}), "i32");

  AttentionSaved saved;
  ASSERT_TRUE(AttentionForward(q, k, v, options, &saved).ok());
  Tensor dq, dk, dv;
  Tensor dcontext = RandomTensor({2, 4, 6}, 6);
  EXPECT_TRUE(AttentionBackward(q, k, v, options, saved, dcontext, &dq, &dk, &dv).ok());
  EXPECT_FALSE(
      AttentionBackward(q, k, v, options, saved, RandomTensor({2, 5, 6}, 6), &dq, &dk, &dv).ok());
  EXPECT_FALSE(
      AttentionBackward(q, k, v, options, saved, dcontext.To(DType::kF32), &dq, &dk, &dv).ok());
  EXPECT_FALSE(AttentionBackward(q, k, v, options, saved, dcontext, nullptr, &dk, &dv).ok());
  EXPECT_FALSE(AttentionBackward(q, k, v, options, AttentionSaved{}, dcontext, &dq, &dk, &dv).ok());
  AttentionSaved wrong{.probs = Tensor::Zeros({2, 2, 5, 4}, DType::kF64)};
  EXPECT_FALSE(AttentionBackward(q, k, v, options, wrong, dcontext, &dq, &dk, &dv).ok());
  AttentionOptions three_heads = options;
  three_heads.heads = 3;  // saved.probs were made with two
  EXPECT_FALSE(AttentionBackward(q, k, v, three_heads, saved, dcontext, &dq, &dk, &dv).ok());
}

}  // namespace
}  // namespace pipetrain::ops
