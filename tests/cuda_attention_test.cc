// Attention on the GPU against the CPU reference, forward and backward, over
// shapes, masks (causal, key padding), dropout and both GPU dtypes. With
// dropout on, the two agree only if the masks are identical (a single
// different mask element moves the context by a whole probability·v term).
// Skips without a GPU.
#include <tuple>

#include "core/ops/attention.h"
#include "gtest/gtest.h"
#include "tests/testing/gpu.h"
#include "tests/testing/grad_check.h"

namespace pipetrain::ops {
namespace {

using ::pipetrain::testing::AbsTolFor;
using ::pipetrain::testing::AllClose;
using ::pipetrain::testing::OnGpu;
using ::pipetrain::testing::RandomTensor;
using ::pipetrain::testing::RelTolFor;
using ::pipetrain::testing::Rounded;

struct Case {
  int64_t batch, tq, tk, heads, head_dim;
  bool causal;
  bool padded;  // key lengths shorter than Tk
  double dropout;
};

class CudaAttentionTest : public ::testing::TestWithParam<std::tuple<Case, DType>> {};

TEST_P(CudaAttentionTest, ForwardAndBackwardMatchCpu) {
  PT_REQUIRE_GPU();
  const auto& [c, dtype] = GetParam();
  const int64_t width = c.heads * c.head_dim;
  const Tensor q = Rounded(RandomTensor({c.batch, c.tq, width}, 1), dtype);
  const Tensor k = Rounded(RandomTensor({c.batch, c.tk, width}, 2), dtype);
  const Tensor v = Rounded(RandomTensor({c.batch, c.tk, width}, 3), dtype);
  const Tensor dctx = Rounded(RandomTensor({c.batch, c.tq, width}, 4), dtype);
  AttentionOptions options;
  options.heads = static_cast<int>(c.heads);
  options.causal = c.causal;
  options.dropout = c.dropout;
  options.rng = RngKey{.seed = 7, .step = 3, .layer = 2, .microbatch = 1, .site = 2};
  if (c.padded) {
    std::vector<int32_t> lengths(c.batch);
    for (int64_t b = 0; b < c.batch; ++b) lengths[b] = static_cast<int32_t>(c.tk - b % c.tk);
    options.key_lengths = Tensor::FromInts(lengths, {c.batch});
  }
  const double rtol = RelTolFor(dtype), atol = AbsTolFor(dtype);

  AttentionSaved cpu_saved, gpu_saved;
  const Tensor ctx_cpu = *AttentionForward(q, k, v, options, &cpu_saved);
  const Tensor qg = OnGpu(q, dtype), kg = OnGpu(k, dtype), vg = OnGpu(v, dtype);
  absl::StatusOr<Tensor> ctx_gpu = AttentionForward(qg, kg, vg, options, &gpu_saved);
  ASSERT_TRUE(ctx_gpu.ok()) << ctx_gpu.status();
  EXPECT_EQ(gpu_saved.probs.dtype(), DType::kF32);
  EXPECT_TRUE(AllClose(gpu_saved.probs, cpu_saved.probs, 1e-3, 1e-5));
  EXPECT_TRUE(AllClose(*ctx_gpu, ctx_cpu, rtol, atol));

  Tensor dq_cpu, dk_cpu, dv_cpu, dq_gpu, dk_gpu, dv_gpu;
  ASSERT_TRUE(AttentionBackward(q, k, v, options, cpu_saved, dctx, &dq_cpu, &dk_cpu, &dv_cpu).ok());
  absl::Status st = AttentionBackward(qg, kg, vg, options, gpu_saved, OnGpu(dctx, dtype), &dq_gpu,
                                      &dk_gpu, &dv_gpu);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(AllClose(dq_gpu, dq_cpu, rtol, 2 * atol));
  EXPECT_TRUE(AllClose(dk_gpu, dk_cpu, rtol, 2 * atol));
  EXPECT_TRUE(AllClose(dv_gpu, dv_cpu, rtol, 2 * atol));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttentionTest,
    ::testing::Combine(::testing::Values(Case{1, 1, 1, 1, 8, false, false, 0.0},
                                         Case{2, 5, 7, 2, 16, false, true, 0.0},
                                         Case{2, 9, 9, 3, 32, true, false, 0.0},
                                         Case{3, 17, 17, 2, 64, true, true, 0.1},
                                         Case{2, 33, 21, 4, 64, false, true, 0.3},
                                         Case{4, 128, 128, 16, 64, true, false, 0.1}),
                       ::testing::Values(DType::kF32, DType::kBF16)));

}  // namespace
}  // namespace pipetrain::ops
