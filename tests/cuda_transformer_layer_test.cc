// A whole encoder and decoder layer of every normalisation kind on the GPU
// (f32, parameters on the device) against the same layer on the CPU in f64:
// output, input gradients and every parameter gradient, with dropout and
// padding masks on. This is the layer-level proof that the CUDA ops compose
// like the CPU ones. Skips without a GPU.
#include <string>

#include "core/device.h"
#include "gtest/gtest.h"
#include "models/transformer_layer.h"
#include "tests/testing/gpu.h"
#include "tests/testing/grad_check.h"

namespace pipetrain {
namespace {

using testing::AllClose;
using testing::RandomTensor;

struct LayerCase {
  ResidualNorm norm;
  BranchNormShape branch_shape;
  bool decoder;
};

std::string CaseName(const ::testing::TestParamInfo<LayerCase>& info) {
  std::string name = ResidualNorm_Name(info.param.norm);
  if (info.param.norm == BRANCHNORM) name += "_" + BranchNormShape_Name(info.param.branch_shape);
  return name + (info.param.decoder ? "_Decoder" : "_Encoder");
}

LayerConfig ConfigFor(const LayerCase& c) {
  LayerConfig config;
  config.d_model = 64;
  config.ffn_dim = 256;
  config.heads = 4;
  config.norm = c.norm;
  config.alpha =
      (c.norm == DEEPNORM || c.norm == FOUNDATION_LN || c.norm == UPSCALE_LN) ? 1.7 : 1.0;
  config.beta = c.norm == DEEPNORM ? 0.6 : 1.0;
  config.branch.set_shape(c.branch_shape);
  config.branch.set_max_norm_step(10);
  config.branch.set_start_scale(0.2f);
  config.attention_dropout = 0.1;
  config.activation_dropout = 0.1;
  config.residual_dropout = 0.1;
  config.causal = c.decoder;
  config.cross = c.decoder;
  config.index = 3;
  return config;
}

class CudaLayerTest : public ::testing::TestWithParam<LayerCase> {};

TEST_P(CudaLayerTest, MatchesCpuForwardAndBackward) {
  PT_REQUIRE_GPU();
  const LayerCase& c = GetParam();
  const LayerConfig config = ConfigFor(c);
  ParameterStore cpu_store(DType::kF64);
  TransformerLayer cpu_layer(cpu_store, "layer", config);
  cpu_store.Finalize();
  cpu_store.Initialize(11);
  // Perturb every parameter so LN gains are not 1 and biases not 0, then use
  // exactly those (f32-rounded) values on both sides.
  Tensor noise = RandomTensor(cpu_store.flat_params().shape(), 5, 0.1);
  for (int64_t i = 0; i < noise.numel(); ++i) {
    cpu_store.flat_params().data<double>()[i] += noise.data<double>()[i];
  }
  Tensor f32_params = cpu_store.flat_params().To(DType::kF32);
  ASSERT_TRUE(CopyTensor(f32_params.To(DType::kF64), cpu_store.flat_params()).ok());
  ParameterStore gpu_store(DType::kF32, Device::kCuda);
  TransformerLayer gpu_layer(gpu_store, "layer", config);
  gpu_store.Finalize();
  // Parameter by parameter: the GPU store aligns each parameter, so its
  // offsets differ from the CPU store's.
  ASSERT_EQ(gpu_store.infos().size(), cpu_store.infos().size());
  for (size_t p = 0; p < cpu_store.infos().size(); ++p) {
    const ParameterInfo& ci = cpu_store.infos()[p];
    const ParameterInfo& gi = gpu_store.infos()[p];
    ASSERT_EQ(ci.name, gi.name);
    Tensor dst = gpu_store.flat_params().View(gi.offset, gi.shape);
    ASSERT_TRUE(CopyTensor(f32_params.View(ci.offset, ci.shape), dst).ok());
  }

  const int64_t b = 3, t = 17, s = 11, d = config.d_model;
  auto rounded = [](const Tensor& x) { return x.To(DType::kF32).To(DType::kF64); };
  const Tensor x = rounded(RandomTensor({b, t, d}, 1));
  const Tensor memory = c.decoder ? rounded(RandomTensor({b, s, d}, 2)) : Tensor();
  const Tensor self_lengths = Tensor::FromInts({17, 9, 1}, {b});
  const Tensor memory_lengths = c.decoder ? Tensor::FromInts({11, 4, 7}, {b}) : Tensor();
  const Tensor w = rounded(RandomTensor({b, t, d}, 3));
  const StepContext ctx{.seed = 9, .step = 5, .microbatch = 1, .training = true};
  auto gpu = [](const Tensor& t) {
    return t.defined() ? t.To(DType::kF32).CopyTo(Device::kCuda) : Tensor();
  };

  LayerSaved cpu_saved, gpu_saved;
  absl::StatusOr<Tensor> y_cpu =
      cpu_layer.Forward(ctx, x, self_lengths, memory, memory_lengths, &cpu_saved);
  ASSERT_TRUE(y_cpu.ok()) << y_cpu.status();
  absl::StatusOr<Tensor> y_gpu =
      gpu_layer.Forward(ctx, gpu(x), self_lengths, gpu(memory), memory_lengths, &gpu_saved);
  ASSERT_TRUE(y_gpu.ok()) << y_gpu.status();
  EXPECT_TRUE(AllClose(*y_gpu, *y_cpu, 1e-4, 1e-4));

  Tensor dmem_cpu, dmem_gpu;
  absl::StatusOr<Tensor> dx_cpu = cpu_layer.BackwardInput(ctx, &cpu_saved, w, &dmem_cpu);
  ASSERT_TRUE(dx_cpu.ok()) << dx_cpu.status();
  absl::StatusOr<Tensor> dx_gpu = gpu_layer.BackwardInput(ctx, &gpu_saved, gpu(w), &dmem_gpu);
  ASSERT_TRUE(dx_gpu.ok()) << dx_gpu.status();
  ASSERT_TRUE(cpu_layer.BackwardWeight(&cpu_saved).ok());
  absl::Status st = gpu_layer.BackwardWeight(&gpu_saved);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(AllClose(*dx_gpu, *dx_cpu, 1e-3, 1e-4));
  if (c.decoder) EXPECT_TRUE(AllClose(dmem_gpu, dmem_cpu, 1e-3, 1e-4));
  const Tensor grads_gpu = gpu_store.flat_grads().CopyTo(Device::kCpu);
  for (size_t p = 0; p < cpu_store.infos().size(); ++p) {
    const ParameterInfo& ci = cpu_store.infos()[p];
    const ParameterInfo& gi = gpu_store.infos()[p];
    const Shape flat{NumElements(ci.shape)};
    EXPECT_TRUE(AllClose(grads_gpu.View(gi.offset, flat),
                         cpu_store.flat_grads().View(ci.offset, flat), 1e-3, 1e-3))
        << ci.name;
  }
}

// The bf16 path the trainer uses: f32 masters, a bf16 compute copy, bf16
// activations, f32 gradients. Every op must accept that mix (a dtype mismatch
// is an error, caught here first) and the results stay within bf16 rounding.
TEST_P(CudaLayerTest, Bf16ComputeCopyRunsAndStaysClose) {
  PT_REQUIRE_GPU();
  const LayerCase& c = GetParam();
  const LayerConfig config = ConfigFor(c);
  ParameterStore cpu_store(DType::kF64);
  TransformerLayer cpu_layer(cpu_store, "layer", config);
  cpu_store.Finalize();
  cpu_store.Initialize(11);
  ParameterStore gpu_store(DType::kF32, Device::kCuda, DType::kBF16);
  TransformerLayer gpu_layer(gpu_store, "layer", config);
  gpu_store.Finalize();
  for (size_t p = 0; p < cpu_store.infos().size(); ++p) {
    const ParameterInfo& ci = cpu_store.infos()[p];
    const ParameterInfo& gi = gpu_store.infos()[p];
    // The CPU computes with the bf16-rounded values the GPU computes with.
    Tensor cpu_view = cpu_store.flat_params().View(ci.offset, ci.shape);
    const Tensor rounded = cpu_view.To(DType::kBF16).To(DType::kF64);
    ASSERT_TRUE(CopyTensor(rounded, cpu_view).ok());
    Tensor dst = gpu_store.flat_params().View(gi.offset, gi.shape);
    ASSERT_TRUE(CopyTensor(rounded.To(DType::kF32), dst).ok());
  }
  gpu_store.RefreshComputeCopy();

  const int64_t b = 2, t = 9, s = 7, d = config.d_model;
  auto rounded = [](const Tensor& x) { return x.To(DType::kBF16).To(DType::kF64); };
  const Tensor x = rounded(RandomTensor({b, t, d}, 1));
  const Tensor memory = c.decoder ? rounded(RandomTensor({b, s, d}, 2)) : Tensor();
  const Tensor self_lengths = Tensor::FromInts({9, 4}, {b});
  const Tensor memory_lengths = c.decoder ? Tensor::FromInts({7, 3}, {b}) : Tensor();
  const Tensor w = rounded(RandomTensor({b, t, d}, 3));
  const StepContext ctx{.seed = 9, .step = 5, .microbatch = 1, .training = true};
  auto gpu = [](const Tensor& t) {
    return t.defined() ? t.To(DType::kBF16).CopyTo(Device::kCuda) : Tensor();
  };
  LayerSaved cpu_saved, gpu_saved;
  absl::StatusOr<Tensor> y_cpu =
      cpu_layer.Forward(ctx, x, self_lengths, memory, memory_lengths, &cpu_saved);
  ASSERT_TRUE(y_cpu.ok()) << y_cpu.status();
  absl::StatusOr<Tensor> y_gpu =
      gpu_layer.Forward(ctx, gpu(x), self_lengths, gpu(memory), memory_lengths, &gpu_saved);
  ASSERT_TRUE(y_gpu.ok()) << y_gpu.status();
  EXPECT_EQ(y_gpu->dtype(), DType::kBF16);
  EXPECT_TRUE(AllClose(*y_gpu, *y_cpu, 5e-2, 5e-2));
  Tensor dmem_cpu, dmem_gpu;
  absl::StatusOr<Tensor> dx_cpu = cpu_layer.BackwardInput(ctx, &cpu_saved, w, &dmem_cpu);
  ASSERT_TRUE(dx_cpu.ok()) << dx_cpu.status();
  absl::StatusOr<Tensor> dx_gpu = gpu_layer.BackwardInput(ctx, &gpu_saved, gpu(w), &dmem_gpu);
  ASSERT_TRUE(dx_gpu.ok()) << dx_gpu.status();
  ASSERT_TRUE(cpu_layer.BackwardWeight(&cpu_saved).ok());
  absl::Status st = gpu_layer.BackwardWeight(&gpu_saved);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(AllClose(*dx_gpu, *dx_cpu, 5e-2, 1e-1));
  EXPECT_EQ(gpu_store.flat_grads().dtype(), DType::kF32);
}

std::vector<LayerCase> AllCases() {
  std::vector<LayerCase> cases;
  for (bool decoder : {false, true}) {
    for (ResidualNorm norm :
         {POST_LN, PRE_LN, DEEPNORM, NORMFORMER, FOUNDATION_LN, UPSCALE_LN, SUBLN}) {
      cases.push_back({norm, LINEAR_SCALE, decoder});
    }
    cases.push_back({BRANCHNORM, LINEAR_SCALE, decoder});
    cases.push_back({BRANCHNORM, NORMALIZED_POWER, decoder});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllNorms, CudaLayerTest, ::testing::ValuesIn(AllCases()), CaseName);

}  // namespace
}  // namespace pipetrain
