// Pipeline and data parallelism against the one-process run, end to end:
// `mpirun -np N pipetrain train ...` on the same spec, seed and data, with
// dropout on. Only placement changes between the pipeline runs, so their
// params_digest must equal the one-process digest bit for bit; data
// parallelism changes the order in which micro-batch gradients are added, so
// its loss and gradient norm must follow the one-process run step by step.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using testing::CheckedFinalDigest;
using testing::RunPipetrain;

// 8 layers (4+4) so that 4 stages × 2 chunks still give every virtual stage a
// layer; dropout everywhere so that replaying masks is part of the proof.
const char kBase[] =
    "train --spec configs/tiny.pbtxt --steps 5 --set encoder_layers=4 --set decoder_layers=4 "
    "--set attention_dropout=0.1 --set activation_dropout=0.1 --set residual_dropout=0.1 ";

testing::RunResult RunMpi(int ranks, const std::string& args) {
  // mpirun runs the binary with the same working directory, set by RunPipetrain.
  const std::string launcher = std::string("env OMPI_ALLOW_RUN_AS_ROOT=1 ") +
                               "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " +
                               PIPETRAIN_MPIRUN + " " + std::to_string(ranks) + " ";
  return testing::RunCommand(launcher + PIPETRAIN_BINARY + " " + args);
}

// The "measured a b c, simulated a b c" of the peak-live report, as two strings.
std::pair<std::string, std::string> PeakLive(const std::string& output) {
  const std::string key = "peak live activations by stage: measured ";
  const size_t at = output.find(key);
  if (at == std::string::npos) return {};
  const size_t comma = output.find(", simulated ", at);
  const size_t end = output.find('\n', comma);
  return {output.substr(at + key.size(), comma - at - key.size()),
          output.substr(comma + 12, end - comma - 12)};
}

std::string SingleProcessDigest(const std::string& extra) {
  const auto r = RunPipetrain(std::string(kBase) + extra);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return CheckedFinalDigest(r.output);
}

struct PipelineCase {
  const char* name;
  int ranks;
  const char* args;
};

class PipelineDigestTest : public ::testing::TestWithParam<PipelineCase> {};

TEST_P(PipelineDigestTest, EqualsOneProcessBitwise) {
  const PipelineCase& c = GetParam();
  static const std::string expected = SingleProcessDigest("--set microbatches=4");
  ASSERT_FALSE(expected.empty());
  const auto r = RunMpi(c.ranks, std::string(kBase) + "--set microbatches=4 " + c.args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(CheckedFinalDigest(r.output), expected) << r.output;
  // The activations each stage really held match the schedule simulator.
  const auto [measured, simulated] = PeakLive(r.output);
  EXPECT_FALSE(measured.empty()) << r.output;
  EXPECT_EQ(measured, simulated) << r.output;
}

TEST(PeakLiveTest, OneFOneBKeepsMinOfStagesLeftAndMicrobatches) {
  // 1F1B on rank r keeps min(p − r, m) micro-batches; GPipe keeps all m.
  const auto f1b = RunMpi(4, std::string(kBase) +
                                 "--set microbatches=6 --set pipeline.stages=4 "
                                 "--set pipeline.schedule=1f1b --steps 1");
  ASSERT_EQ(f1b.exit_code, 0) << f1b.output;
  EXPECT_EQ(PeakLive(f1b.output).first, "4 3 2 1") << f1b.output;
  const auto gpipe = RunMpi(4, std::string(kBase) +
                                   "--set microbatches=6 --set pipeline.stages=4 "
                                   "--set pipeline.schedule=gpipe --steps 1");
  ASSERT_EQ(gpipe.exit_code, 0) << gpipe.output;
  EXPECT_EQ(PeakLive(gpipe.output).first, "6 6 6 6") << gpipe.output;
}

INSTANTIATE_TEST_SUITE_P(
    Placements, PipelineDigestTest,
    ::testing::Values(
        PipelineCase{"pp2_gpipe", 2, "--set pipeline.stages=2 --set pipeline.schedule=gpipe"},
        PipelineCase{"pp2_1f1b", 2, "--set pipeline.stages=2 --set pipeline.schedule=1f1b"},
        PipelineCase{"pp2_interleaved", 2,
                     "--set pipeline.stages=2 --set pipeline.schedule=interleaved "
                     "--set pipeline.chunks=2"},
        PipelineCase{"pp4_gpipe", 4, "--set pipeline.stages=4 --set pipeline.schedule=gpipe"},
        PipelineCase{"pp4_1f1b", 4, "--set pipeline.stages=4 --set pipeline.schedule=1f1b"},
        PipelineCase{"pp4_interleaved", 4,
                     "--set pipeline.stages=4 --set pipeline.schedule=interleaved "
                     "--set pipeline.chunks=2"},
        // The encoder/decoder boundary inside a stage, and stages of unequal size.
        PipelineCase{"pp2_explicit_boundary_inside", 2,
                     "--set pipeline.stages=2 --set pipeline.partition=explicit "
                     "--set pipeline.boundaries=3"},
        PipelineCase{"pp2_recompute_full", 2,
                     "--set pipeline.stages=2 --set pipeline.recompute=full"},
        PipelineCase{"pp2_stage_recompute", 2,
                     "--set pipeline.stages=2 --set pipeline.stage_recompute=full,none"},
        PipelineCase{"pp4_recompute_every2", 4,
                     "--set pipeline.stages=4 --set pipeline.recompute=every "
                     "--set pipeline.recompute_every=2"}),
    [](const ::testing::TestParamInfo<PipelineCase>& info) { return info.param.name; });

// Section "Which placements are bitwise" of docs/parallel.md: replicas add
// micro-batch gradients in another order than one process, so the runs are
// compared step by step at full precision (the metrics lines print loss and
// norm with %.17g), within a tolerance that a real bug exceeds by far.
TEST(DataParallelTest, Pp2Dp2FollowsOneProcessWithTheSameGlobalBatchStepByStep) {
  // One process with 4 micro-batches sees the same global batch as 2 replicas
  // of 2 micro-batches each.
  const std::string dir = ::testing::TempDir() + "/cpu_dp";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string base = std::string(kBase) + "--set log_interval=1 ";
  const auto single =
      RunPipetrain(base + "--set microbatches=4 --metrics " + dir + "/single.jsonl");
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto dp = RunMpi(4, base +
                                "--set microbatches=2 --set pipeline.stages=2 "
                                "--set data_parallel=2 --metrics " +
                                dir + "/dp.jsonl");
  ASSERT_EQ(dp.exit_code, 0) << dp.output;
  const auto loss = testing::MetricsValues(dir + "/single.jsonl", "loss");
  ASSERT_EQ(loss.size(), 5u);
  EXPECT_EQ(testing::StepsDiffer(loss, testing::MetricsValues(dir + "/dp.jsonl", "loss"), 1e-7),
            "");
  EXPECT_EQ(testing::StepsDiffer(testing::MetricsValues(dir + "/single.jsonl", "grad_norm"),
                                 testing::MetricsValues(dir + "/dp.jsonl", "grad_norm"), 1e-6),
            "");
  // And the runs did train: the comparison is not of five equal values.
  EXPECT_NE(loss.front(), loss.back());
  CheckedFinalDigest(dp.output);
}

TEST(StepsDifferTest, ANanOrAnInfIsADifferenceWhateverTheTolerance) {
  const double nan = std::nan(""), inf = INFINITY;
  EXPECT_EQ(testing::StepsDiffer({1.0, 2.0}, {1.0, 2.0}, 0), "");
  EXPECT_NE(testing::StepsDiffer({1.0, nan}, {1.0, nan}, 1e9), "");
  EXPECT_NE(testing::StepsDiffer({nan}, {1.0}, 1e9), "");
  EXPECT_NE(testing::StepsDiffer({1.0}, {inf}, 1e9), "");
  EXPECT_NE(testing::StepsDiffer({1.0}, {1.1}, 1e-3), "");
  EXPECT_NE(testing::StepsDiffer({}, {}, 1), "");
}

TEST(PipelineErrorsTest, WorldSizeMustMatchTheGrid) {
  const auto r = RunMpi(2, std::string(kBase) + "--set pipeline.stages=4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("pipeline"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("4"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace pipetrain
