// Embedding lookup, its weight gradient and the sinusoidal positions on the
// GPU against the CPU in f64 on the same (dtype-rounded) inputs, for both GPU
// dtypes. Skips without a GPU.
#include <tuple>
#include <vector>

#include "core/ops/embedding.h"
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

// ids [b, t] over [0, vocab) with many repeats (so the gradient rows collide).
Tensor Ids(int64_t b, int64_t t, int64_t vocab) {
  std::vector<int32_t> ids(b * t);
  for (int64_t i = 0; i < b * t; ++i) ids[i] = static_cast<int32_t>((i * i * 31 + 7) % vocab);
  return Tensor::FromInts(ids, {b, t});
}

// (vocab, d, batch, time)
using Dims = std::tuple<int64_t, int64_t, int64_t, int64_t>;
class CudaEmbeddingTest : public ::testing::TestWithParam<std::tuple<Dims, DType>> {};

TEST_P(CudaEmbeddingTest, MatchesCpu) {
  PT_REQUIRE_GPU();
  const auto& [dims, dtype] = GetParam();
  const auto& [vocab, d, b, t] = dims;
  const Tensor table = Rounded(RandomTensor({vocab, d}, 41), dtype);
  const Tensor ids = Ids(b, t, vocab);
  const Tensor g_ids = ids.CopyTo(Device::kCuda);
  const double scale = 1.7;

  const Tensor y_cpu = *EmbeddingForward(ids, table, scale);
  absl::StatusOr<Tensor> y_gpu = EmbeddingForward(g_ids, OnGpu(table, dtype), scale);
  ASSERT_TRUE(y_gpu.ok()) << y_gpu.status();
  EXPECT_EQ(y_gpu->dtype(), dtype);
  EXPECT_EQ(y_gpu->shape(), y_cpu.shape());
  EXPECT_TRUE(AllClose(*y_gpu, y_cpu, RelTolFor(dtype), AbsTolFor(dtype)));

  // Weight gradient accumulates into f32 on the GPU: both start from 0.25.
  const Tensor dy = Rounded(RandomTensor({b, t, d}, 42), dtype);
  Tensor dt_cpu = Tensor::Empty({vocab, d}, DType::kF64);
  dt_cpu.Fill(0.25);
  ASSERT_TRUE(EmbeddingBackwardWeight(ids, dy, scale, dt_cpu).ok());
  Tensor dt_gpu = Tensor::Empty({vocab, d}, DType::kF32, Device::kCuda);
  dt_gpu.Fill(0.25);
  absl::Status st = EmbeddingBackwardWeight(g_ids, OnGpu(dy, dtype), scale, dt_gpu);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(AllClose(dt_gpu, dt_cpu, 1e-5, 1e-5 * static_cast<double>(b * t)));
  // Deterministic: a second accumulation from the same start gives the same bits.
  Tensor dt_again = Tensor::Empty({vocab, d}, DType::kF32, Device::kCuda);
  dt_again.Fill(0.25);
  ASSERT_TRUE(EmbeddingBackwardWeight(g_ids, OnGpu(dy, dtype), scale, dt_again).ok());
  EXPECT_EQ(dt_again.ToVector(), dt_gpu.ToVector());

  // Positions: in place, on the (rounded) embeddings.
  Tensor x_cpu = Rounded(y_cpu, dtype);
  Tensor x_gpu = OnGpu(x_cpu, dtype);
  ASSERT_TRUE(AddSinusoidalPositions(x_cpu).ok());
  st = AddSinusoidalPositions(x_gpu);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(AllClose(x_gpu, x_cpu, RelTolFor(dtype), AbsTolFor(dtype)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaEmbeddingTest,
                         ::testing::Combine(::testing::Values(Dims{1, 1, 1, 1}, Dims{10, 7, 2, 5},
                                                              Dims{1000, 512, 4, 37},
                                                              Dims{32000, 256, 8, 128}),
                                            ::testing::Values(DType::kF32, DType::kBF16)));

TEST(CudaEmbeddingErrors, OutOfRangeIdNamesIdAndPosition) {
  PT_REQUIRE_GPU();
  const Tensor table = OnGpu(RandomTensor({9, 4}, 1), DType::kBF16);
  const Tensor ids = Tensor::FromInts({0, 1, 2, 3, 4, 9}, {2, 3}).CopyTo(Device::kCuda);
  absl::StatusOr<Tensor> y = EmbeddingForward(ids, table, 1.0);
  ASSERT_EQ(y.status().code(), absl::StatusCode::kInvalidArgument) << y.status();
  EXPECT_NE(y.status().message().find("id 9"), absl::string_view::npos) << y.status();
  EXPECT_NE(y.status().message().find("[1,2]"), absl::string_view::npos) << y.status();
  // ids left on the CPU are refused.
  EXPECT_EQ(EmbeddingForward(Tensor::FromInts({0}, {1}), table, 1.0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pipetrain::ops
