// train.early_update_steps: DeepNet's ||F(x; θ_t) − F(x; θ_0)|| on step 0's
// batch. Step 0's line is exactly 0 (θ_0 rebuilt from the seed is the
// trainer's start), the measure grows with the updates, a 2-stage pipeline
// gives one process's values to the bit, a run resumed inside the window
// goes on with the uninterrupted run's values, and training is unchanged.
// BranchNorm is measured with its step's branch scale; a bf16 (GPU) spec's
// probe builds on the CPU.
#include "launcher/trainer/early_update.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/config/spec_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using testing::RunPipetrain;

// 4+4 layers with dropout (the probe measures without it), 2 micro-batches.
const char kBase[] =
    "train --spec configs/tiny.pbtxt --set encoder_layers=4 --set decoder_layers=4 "
    "--set residual_dropout=0.1 --set microbatches=2 --set log_interval=1 ";

std::string TempDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/early_update/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The "early_update" value of each early-update line, by step; the exact
// text, so that equal runs compare to the last digit.
std::map<int, std::string> ReadMeasure(const std::string& path) {
  std::map<int, std::string> by_step;
  std::ifstream in(path);
  std::string line;
  const std::string key = "\"early_update\":";
  while (std::getline(in, line)) {
    const size_t at = line.find(key);
    if (at == std::string::npos) continue;
    const int step = std::stoi(line.substr(line.find("\"step\":") + 7));
    const size_t start = at + key.size();
    by_step[step] = line.substr(start, line.find(',', start) - start);
  }
  return by_step;
}

TEST(EarlyUpdateTest, StartsAtZeroGrowsAndLeavesTrainingUnchanged) {
  const std::string dir = TempDir("single");
  const auto r = RunPipetrain(std::string(kBase) +
                              "--steps 6 --set early_update_steps=4 --metrics " + dir + "/m.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::HasSubstr("early-update measure over steps 1-4"));
  EXPECT_THAT(r.output, ::testing::Not(::testing::HasSubstr("differs from the trainer")));
  const std::map<int, std::string> measure = ReadMeasure(dir + "/m.jsonl");
  ASSERT_EQ(measure.size(), 5u) << "steps 0-4, none after";
  EXPECT_EQ(measure.at(0), "0");
  for (int step = 1; step <= 4; ++step) {
    SCOPED_TRACE(step);
    EXPECT_GT(std::stod(measure.at(step)), std::stod(measure.at(step - 1)));
  }
  // Measuring only reads the parameters.
  const auto plain = RunPipetrain(std::string(kBase) + "--steps 6");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(testing::CheckedFinalDigest(r.output), testing::CheckedFinalDigest(plain.output));
}

TEST(EarlyUpdateTest, StartsAtZeroInDoublePrecision) {
  const std::string dir = TempDir("f64");
  const auto r = RunPipetrain(std::string(kBase) +
                              "--steps 2 --set dtype=f64 --set early_update_steps=2 --metrics " +
                              dir + "/m.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::map<int, std::string> measure = ReadMeasure(dir + "/m.jsonl");
  ASSERT_EQ(measure.size(), 3u);
  EXPECT_EQ(measure.at(0), "0");
  EXPECT_GT(std::stod(measure.at(2)), 0);
}

TEST(EarlyUpdateTest, TwoStagePipelineMeasuresWhatOneProcessDoes) {
  const std::string dir = TempDir("pipeline");
  const std::string args = std::string(kBase) + "--steps 3 --set early_update_steps=3 ";
  const auto single = RunPipetrain(args + "--metrics " + dir + "/one.jsonl");
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto pipe = testing::RunCommand(
      std::string("env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                  "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive ") +
      PIPETRAIN_MPIRUN + " 2 " + PIPETRAIN_BINARY + " " + args +
      "--set pipeline.stages=2 --set output_dir=" + dir + "/run --metrics " + dir + "/two.jsonl");
  ASSERT_EQ(pipe.exit_code, 0) << pipe.output;
  const std::map<int, std::string> one = ReadMeasure(dir + "/one.jsonl");
  EXPECT_EQ(one.size(), 4u);
  EXPECT_EQ(ReadMeasure(dir + "/two.jsonl"), one);
}

TEST(EarlyUpdateTest, ResumedRunGoesOnMeasuringFromTheSameStart) {
  const std::string dir = TempDir("resume");
  const std::string args =
      std::string(kBase) + "--set early_update_steps=4 --set checkpoint_interval=2 ";
  const auto whole = RunPipetrain(args + "--steps 4 --set output_dir=" + dir + "/whole --metrics " +
                                  dir + "/whole.jsonl");
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const std::string run = " --set output_dir=" + dir + "/parts --metrics " + dir + "/parts.jsonl";
  const auto first = RunPipetrain(args + "--steps 2" + run);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto second = RunPipetrain(args + "--steps 4" + run);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, ::testing::HasSubstr("early-update measure over steps 3-4"));
  EXPECT_EQ(ReadMeasure(dir + "/parts.jsonl"), ReadMeasure(dir + "/whole.jsonl"));
}

TEST(EarlyUpdateTest, BranchNormIsMeasuredWithTheStepsBranchScale) {
  // A rate so small that the weights barely move: what the measure sees is
  // BranchNorm's branch scale moving with the step (frozen at step 0's, the
  // distance would be ~1e-9).
  const std::string dir = TempDir("branchnorm");
  const auto r = RunPipetrain(std::string(kBase) +
                              "--steps 3 --set early_update_steps=3 --set lr=1e-12 "
                              "--set norm=BRANCHNORM --set branch_norm.shape=LINEAR_SCALE "
                              "--set branch_norm.max_norm_step=10 --metrics " +
                              dir + "/m.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::map<int, std::string> measure = ReadMeasure(dir + "/m.jsonl");
  ASSERT_EQ(measure.size(), 4u);
  EXPECT_EQ(measure.at(0), "0");
  EXPECT_GT(std::stod(measure.at(3)), 1e-4);
}

TEST(EarlyUpdateTest, ProbeOfABf16SpecBuildsOnTheCpu) {
  // bf16 runs keep f32 master weights: the probe's f32 model is their θ_0.
  absl::StatusOr<RunSpec> spec =
      LoadRunSpec(std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt", "",
                  {"dtype=bf16", "device=cuda", "early_update_steps=2"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::unique_ptr<EarlyUpdateProbe>> probe = EarlyUpdateProbe::Create(*spec);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_GT((*probe)->tokens(), 0);
  EXPECT_NEAR((*probe)->initial_rms(), 8.0, 0.05);  // sqrt(d) under a unit-gain final LN
}

TEST(EarlyUpdateTest, NegativeStepsAreRefused) {
  const auto r = RunPipetrain(std::string(kBase) + "--steps 1 --set early_update_steps=-1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, ::testing::HasSubstr("early_update_steps"));
}

}  // namespace
}  // namespace pipetrain
