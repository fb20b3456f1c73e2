// Cross-entropy on the GPU against the CPU reference in f64 on the same
// (dtype-rounded) logits: loss and nll sums, token count, saved logsumexp,
// and dlogits, over shapes up to a 64000-word vocabulary and both GPU dtypes.
// Skips without a GPU.
#include <cmath>
#include <tuple>
#include <vector>

#include "core/ops/cross_entropy.h"
#include "gtest/gtest.h"
#include "tests/testing/gpu.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using ::pipetrain::testing::AllClose;
using ::pipetrain::testing::OnGpu;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RelTolFor;

constexpr int32_t kIgnore = -100;

// Targets spread over [0, v), every fifth row ignored.
Tensor Targets(int64_t n, int64_t v) {
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) {
    t[i] = i % 5 == 3 ? kIgnore : static_cast<int32_t>((i * 7919 + 13) % v);
  }
  return Tensor::FromInts(t, {n});
}

class CudaCrossEntropyTest : public ::testing::TestWithParam<std::tuple<Shape, DType, double>> {};

TEST_P(CudaCrossEntropyTest, MatchesCpu) {
  PT_REQUIRE_GPU();
  const auto& [shape, dtype, smoothing] = GetParam();
  const int64_t n = shape[0], v = shape[1];
  const Tensor logits = RandomTensor(shape, 31, 4.0).To(dtype).To(DType::kF64);
  const Tensor targets = Targets(n, v);
  const double grad_scale = 0.37;

  CrossEntropySaved cpu_saved, gpu_saved;
  const CrossEntropyStats cpu =
      *CrossEntropyForward(logits, targets, smoothing, kIgnore, &cpu_saved);
  const Tensor g_logits = OnGpu(logits, dtype);
  const Tensor g_targets = targets.CopyTo(Device::kCuda);
  absl::StatusOr<CrossEntropyStats> gpu =
      CrossEntropyForward(g_logits, g_targets, smoothing, kIgnore, &gpu_saved);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ(gpu->tokens, cpu.tokens);
  EXPECT_NEAR(gpu->loss_sum, cpu.loss_sum, 1e-5 * std::abs(cpu.loss_sum) + 1e-4);
  EXPECT_NEAR(gpu->nll_sum, cpu.nll_sum, 1e-5 * std::abs(cpu.nll_sum) + 1e-4);
  EXPECT_EQ(gpu_saved.logsumexp.device(), Device::kCuda);
  EXPECT_EQ(gpu_saved.logsumexp.dtype(), DType::kF32);
  EXPECT_TRUE(AllClose(gpu_saved.logsumexp, cpu_saved.logsumexp, 1e-6, 1e-5));

  // The same call twice gives the same bits (per-row values summed in order).
  absl::StatusOr<CrossEntropyStats> again =
      CrossEntropyForward(g_logits, g_targets, smoothing, kIgnore, nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->loss_sum, gpu->loss_sum);
  EXPECT_EQ(again->nll_sum, gpu->nll_sum);

  const Tensor d_cpu =
      *CrossEntropyBackward(logits, targets, smoothing, kIgnore, cpu_saved, grad_scale);
  absl::StatusOr<Tensor> d_gpu =
      CrossEntropyBackward(g_logits, g_targets, smoothing, kIgnore, gpu_saved, grad_scale);
  ASSERT_TRUE(d_gpu.ok()) << d_gpu.status();
  EXPECT_EQ(d_gpu->dtype(), dtype);
  EXPECT_EQ(d_gpu->device(), Device::kCuda);
  // Softmax values of a large vocabulary are tiny: a small absolute floor.
  EXPECT_TRUE(AllClose(*d_gpu, d_cpu, RelTolFor(dtype), 1e-6));
  // Ignored rows are exactly zero.
  const std::vector<double> d = d_gpu->ToVector();
  for (int64_t r = 3; r < n; r += 5) {
    for (int64_t j = 0; j < v; ++j) ASSERT_EQ(d[r * v + j], 0.0) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(ShapesDTypesSmoothing, CudaCrossEntropyTest,
                         ::testing::Combine(::testing::Values(Shape{1, 1}, Shape{4, 5},
                                                              Shape{9, 1000}, Shape{33, 4097},
                                                              Shape{12, 64000}),
                                            ::testing::Values(DType::kF32, DType::kBF16),
                                            ::testing::Values(0.0, 0.1)));

TEST(CudaCrossEntropyErrors, OutOfRangeTargetIsAnErrorNamingTheRow) {
  PT_REQUIRE_GPU();
  const Tensor logits = OnGpu(RandomTensor({3, 4}, 24), DType::kBF16);
  const Tensor targets = Tensor::FromInts({0, 1, 4}, {3}).CopyTo(Device::kCuda);
  auto r = CrossEntropyForward(logits, targets, 0.0, kIgnore, nullptr);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("targets[2]"), absl::string_view::npos) << r.status();
  // Targets on the CPU with logits on the GPU are refused.
  auto mixed = CrossEntropyForward(logits, Tensor::FromInts({0, 1, 2}, {3}), 0.0, kIgnore, nullptr);
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument) << mixed.status();
}

}  // namespace
}  // namespace pipetrain::ops
