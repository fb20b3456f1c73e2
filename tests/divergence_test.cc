// A step that is not finite is skipped, never applied; enough of them in a
// row stop the run with "training diverged" and exit status 3; no checkpoint
// holds a non-finite value, and loading refuses one by naming the tensor.
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/config/spec_loader.h"
#include "core/optim/adamw.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launcher/trainer/trainer.h"
#include "models/checkpoint.h"
#include "testing/run_binary.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

RunSpec TinySpec(const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<RunSpec> spec =
      LoadRunSpec(std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt", "", overrides);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

std::string Fresh(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/divergence_" + name;
  fs::remove_all(dir);
  return dir;
}

// The dry run counts exactly the elements the update would spoil, and
// writes nothing.
TEST(AdamWDryRunTest, CountsTheElementsTheUpdateWouldMakeNonFinite) {
  for (DType dtype : {DType::kF32, DType::kF64}) {
    const double huge = dtype == DType::kF32 ? 3e38 : 1.7e308;
    Tensor params = Tensor::FromVector({1.0, huge, -2.0, 0.5}, {4}, dtype);
    // Element 1 decays past the largest float; element 3's gradient squared
    // overflows v; elements 0 and 2 are healthy.
    Tensor grads = Tensor::FromVector({0.1, 0.1, -0.3, huge}, {4}, dtype);
    Tensor m = Tensor::Zeros({4}, dtype);
    Tensor v = Tensor::Zeros({4}, dtype);
    const AdamWHyper hyper{.lr = 10, .weight_decay = 0.5};
    const std::vector<double> before = {params.At(0), params.At(1), params.At(2), params.At(3)};
    Tensor count = Tensor::Zeros({1}, DType::kF64);
    ASSERT_TRUE(CountNonFiniteAdamWResults(hyper, 1, params, grads, m, v, count).ok());
    EXPECT_EQ(count.At(0), 2) << DTypeName(dtype);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(params.At(i), before[i]);
      EXPECT_EQ(m.At(i), 0);
      EXPECT_EQ(v.At(i), 0);
    }
    // And the real update does spoil them: the count is not a guess.
    ASSERT_TRUE(AdamWStep(hyper, 1, params, grads, m, v).ok());
    int spoilt = 0;
    for (int i = 0; i < 4; ++i) {
      spoilt += !(std::isfinite(params.At(i)) && std::isfinite(m.At(i)) && std::isfinite(v.At(i)));
    }
    EXPECT_EQ(spoilt, 2) << DTypeName(dtype);
  }
}

// A skipped step leaves weights and moments bitwise as they were; the next
// healthy step is applied as usual.
TEST(DivergenceTest, ASkippedStepChangesNoWeightAndTrainingGoesOn) {
  for (const char* device : {"train.device=cpu", "train.device=emulated"}) {
    auto trainer = Trainer::Create(TinySpec({device}));
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    ASSERT_TRUE((*trainer)->Step().ok());
    const std::string before = *(*trainer)->ParamsDigest();
    (*trainer)->PoisonNextGradientsForTest();
    absl::StatusOr<StepMetrics> skipped = (*trainer)->Step();
    ASSERT_TRUE(skipped.ok()) << skipped.status();
    EXPECT_TRUE(skipped->skipped) << device;
    EXPECT_EQ(skipped->step, 2);
    EXPECT_EQ(skipped->skipped_steps, 1);
    EXPECT_EQ(*(*trainer)->ParamsDigest(), before) << device;
    absl::StatusOr<StepMetrics> next = (*trainer)->Step();
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_FALSE(next->skipped);
    EXPECT_EQ(next->skipped_in_a_row, 0);
    EXPECT_EQ(next->skipped_steps, 1);
    EXPECT_NE(*(*trainer)->ParamsDigest(), before) << device;
  }
}

// A NaN weight makes every loss NaN: each step is skipped (not an error).
TEST(DivergenceTest, ANonFiniteLossIsSkippedNotApplied) {
  auto trainer = Trainer::Create(TinySpec());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE((*trainer)->Step().ok());
  Tensor& flat = (*trainer)->chunk(0).params().flat_params();
  flat.data<float>()[flat.numel() / 2] = std::numeric_limits<float>::quiet_NaN();
  for (int i = 1; i <= 3; ++i) {
    absl::StatusOr<StepMetrics> step = (*trainer)->Step();
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_TRUE(step->skipped);
    EXPECT_EQ(step->skipped_in_a_row, i);
  }
}

// Loading refuses a non-finite weight or moment by its name.
TEST(DivergenceTest, LoadingRefusesANonFiniteValueNamingTheTensor) {
  const std::string dir = Fresh("nan_checkpoint");
  const RunSpec spec = TinySpec();
  {
    auto trainer = Trainer::Create(spec);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    ASSERT_TRUE((*trainer)->Step().ok());
    // A checkpoint as older versions could write one (they applied any step).
    Tensor& flat = (*trainer)->chunk(0).params().flat_params();
    flat.data<float>()[0] = std::numeric_limits<float>::infinity();
    ASSERT_TRUE((*trainer)->SaveCheckpoint(dir).ok());
  }
  absl::StatusOr<CheckpointReader> reader = CheckpointReader::Open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto trainer = Trainer::Create(spec);
  ASSERT_TRUE(trainer.ok());
  const absl::Status restored = (*trainer)->RestoreCheckpoint(*reader);
  EXPECT_FALSE(restored.ok());
  EXPECT_THAT(std::string(restored.message()), HasSubstr("embed")) << restored.message();
  EXPECT_THAT(restored.message(), HasSubstr("1 non-finite values (first at element 0)"));
  const auto translated = testing::RunPipetrain("translate --ckpt " + dir +
                                                " --src-lang en --tgt-lang de < /dev/null 2>&1");
  EXPECT_NE(translated.exit_code, 0) << translated.output;
  EXPECT_THAT(translated.output, HasSubstr("non-finite"));
}

// The case: lr=1000 without clipping. Before, the run exited 0 with
// infinite AdamW moments in 39 of its 40 checkpoints; now it stops with
// exit status 3 and every checkpoint it wrote verifies as finite.
TEST(DivergenceTest, HugeLearningRateStopsWithExitStatusThreeAndFiniteCheckpoints) {
  const std::string dir = Fresh("lr1000");
  const auto run = testing::RunPipetrain(
      "train --spec configs/tiny.pbtxt --steps 40 --set lr=1000 --set clip_norm=0 "
      "--set checkpoint_interval=1 --set keep_checkpoints=100 --set max_skipped_steps=3 "
      "--set output_dir=" +
      dir);
  EXPECT_EQ(run.exit_code, 3) << run.output;
  EXPECT_THAT(run.output, HasSubstr("training diverged at step"));
  EXPECT_THAT(run.output, HasSubstr("3 steps in a row were skipped"));
  EXPECT_THAT(run.output, HasSubstr("enable clipping (train.clip_norm: 1.0)"));
  EXPECT_THAT(run.output, HasSubstr("skipped: "));
  int checkpoints = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("step_", 0) != 0) continue;
    absl::StatusOr<CheckpointReader> reader = CheckpointReader::Open(entry.path().string());
    ASSERT_TRUE(reader.ok()) << reader.status();
    const auto verified = VerifyCheckpoint(*reader);
    EXPECT_TRUE(verified.ok()) << entry.path() << ": " << verified.status();
    ++checkpoints;
  }
  EXPECT_GE(checkpoints, 5);
  // The metrics file stays JSON (a NaN loss is written as null) and counts
  // the skipped steps.
  const auto metrics = testing::RunCommand("grep -c '\"skipped\":true' " + dir + "/metrics.jsonl");
  EXPECT_EQ(metrics.exit_code, 0) << metrics.output;
  const auto nan = testing::RunCommand("grep -ci 'nan\\|inf' " + dir + "/metrics.jsonl");
  EXPECT_THAT(nan.output, HasSubstr("0"));
}

TEST(DivergenceTest, MaxSkippedStepsMustBePositive) {
  absl::StatusOr<RunSpec> spec =
      LoadRunSpec(std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt", "",
                  {"train.max_skipped_steps=-1"});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("train.max_skipped_steps=-1 must be >= 1"));
}

}  // namespace
}  // namespace pipetrain
