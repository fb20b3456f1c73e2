// Training on the GPU: the tiny model's first 20 steps on `train.device:
// "cuda"` against the same 20 steps on the CPU (same data, seed and dropout
// masks), loss and gradient norm step by step. Without a GPU the GPU run is
// skipped, and what can be checked anywhere is: the spec rules for
// train.device, and that asking for a GPU where there is none fails with the
// reason instead of crashing.
#include <string>
#include <vector>

#include "core/config/spec_loader.h"
#include "gtest/gtest.h"
#include "launcher/trainer/trainer.h"
#include "tests/testing/gpu.h"

namespace pipetrain {
namespace {

const std::string kTiny = std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt";

absl::StatusOr<RunSpec> TinySpec(std::vector<std::string> overrides) {
  overrides.push_back("steps=20");
  // Dropout on, so the GPU's masks must equal the CPU's for the curves to agree.
  overrides.push_back("model.residual_dropout=0.1");
  overrides.push_back("model.attention_dropout=0.1");
  overrides.push_back("model.activation_dropout=0.1");
  return LoadRunSpec(kTiny, "", overrides);
}

std::vector<StepMetrics> Train(const RunSpec& spec) {
  std::vector<StepMetrics> curve;
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(spec);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  if (!trainer.ok()) return curve;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<StepMetrics> m = (*trainer)->Step();
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) break;
    curve.push_back(*m);
  }
  return curve;
}

TEST(CudaTrainTest, TwentyStepsMatchTheCpuRun) {
  PT_REQUIRE_GPU();
  absl::StatusOr<RunSpec> cpu_spec = TinySpec({});
  absl::StatusOr<RunSpec> gpu_spec = TinySpec({"train.device=cuda"});
  ASSERT_TRUE(cpu_spec.ok()) << cpu_spec.status();
  ASSERT_TRUE(gpu_spec.ok()) << gpu_spec.status();
  const std::vector<StepMetrics> cpu = Train(*cpu_spec);
  const std::vector<StepMetrics> gpu = Train(*gpu_spec);
  ASSERT_EQ(cpu.size(), 20u);
  ASSERT_EQ(gpu.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    // f32 on both sides, sums in other orders: differences grow slowly with
    // the steps; 1e-3 relative is far below the change of one step.
    EXPECT_NEAR(gpu[i].loss, cpu[i].loss, 1e-3 * cpu[i].loss) << "step " << i + 1;
    EXPECT_NEAR(gpu[i].grad_norm, cpu[i].grad_norm, 1e-2 * cpu[i].grad_norm) << "step " << i + 1;
    EXPECT_EQ(gpu[i].target_tokens, cpu[i].target_tokens);
  }
  EXPECT_LT(gpu.back().loss, gpu.front().loss);  // it learns
}

TEST(CudaTrainTest, Bf16TwentyStepsFollowTheCpuCurve) {
  PT_REQUIRE_GPU();
  absl::StatusOr<RunSpec> cpu_spec = TinySpec({});
  absl::StatusOr<RunSpec> gpu_spec = TinySpec({"train.device=cuda", "train.dtype=bf16"});
  ASSERT_TRUE(cpu_spec.ok()) << cpu_spec.status();
  ASSERT_TRUE(gpu_spec.ok()) << gpu_spec.status();
  const std::vector<StepMetrics> cpu = Train(*cpu_spec);
  const std::vector<StepMetrics> gpu = Train(*gpu_spec);
  ASSERT_EQ(cpu.size(), 20u);
  ASSERT_EQ(gpu.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    // bf16 activations and weights (f32 masters, f32 sums): about 3 significant
    // digits per op; 3% of the loss is well inside what one step changes early on.
    EXPECT_NEAR(gpu[i].loss, cpu[i].loss, 3e-2 * cpu[i].loss) << "step " << i + 1;
  }
  EXPECT_LT(gpu.back().loss, gpu.front().loss);
}

TEST(CudaTrainTest, DeviceFieldIsValidated) {
  absl::StatusOr<RunSpec> bad = TinySpec({"train.device=tpu"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(
      bad.status().message().find("train.device=\"tpu\" is not \"cpu\", \"cuda\" or \"emulated\""),
      std::string::npos)
      << bad.status();
  absl::StatusOr<RunSpec> f64 = TinySpec({"train.device=cuda", "train.dtype=f64"});
  ASSERT_FALSE(f64.ok());
  EXPECT_NE(f64.status().message().find("set train.dtype=\"bf16\" or \"f32\""), std::string::npos)
      << f64.status();
  absl::StatusOr<RunSpec> cpu_bf16 = TinySpec({"train.dtype=bf16"});
  ASSERT_FALSE(cpu_bf16.ok());
  EXPECT_NE(cpu_bf16.status().message().find("needs train.device=\"cuda\""), std::string::npos)
      << cpu_bf16.status();
  absl::StatusOr<RunSpec> emulated_bf16 = TinySpec({"train.device=emulated", "train.dtype=bf16"});
  ASSERT_FALSE(emulated_bf16.ok());
  // Every placement runs on every device: a pipeline on the GPU is valid.
  EXPECT_TRUE(TinySpec({"train.device=cuda", "train.pipeline.stages=2"}).ok());
  absl::StatusOr<RunSpec> cpu = TinySpec({});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ(cpu->train().device(), "cpu");  // the default, written out
}

TEST(CudaTrainTest, WithoutAGpuACudaRunFailsWithTheReason) {
  std::string why;
  if (CudaDeviceCount(&why) > 0) GTEST_SKIP() << "a GPU is present";
  absl::StatusOr<RunSpec> spec = TinySpec({"train.device=cuda"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(*spec);
  ASSERT_FALSE(trainer.ok());
  EXPECT_FALSE(trainer.status().message().empty());
  // The reason is the runtime's (or the build's) own words.
  EXPECT_TRUE(trainer.status().message().find("CUDA") != std::string::npos ||
              trainer.status().message().find("cuda") != std::string::npos ||
              trainer.status().message().find("GPU") != std::string::npos)
      << trainer.status();
}

}  // namespace
}  // namespace pipetrain
