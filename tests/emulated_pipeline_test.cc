// The GPU orchestration, proven without a GPU: `mpirun ... pipetrain train
// --set device=emulated` runs every placement with tensors that behave as
// GPU memory (core/tensor.h) and travel the device communicator's
// host-staged path. Pipeline-only placements must print the one-process CPU
// digest bit for bit, through a kill and a resume too; a data-parallel run
// must follow the one-process run step by step within the tolerance
// docs/parallel.md states; `device=cuda` without a GPU must stop every rank
// with the reason.
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;
using testing::RunPipetrain;

// 8 layers (4+4) with dropout everywhere, so that the boundary bundle, the
// tied embedding across stages and the replayed masks are all part of it.
const char kBase[] =
    "train --spec configs/tiny.pbtxt --steps 4 --set encoder_layers=4 --set decoder_layers=4 "
    "--set attention_dropout=0.1 --set activation_dropout=0.1 --set residual_dropout=0.1 "
    "--set microbatches=4 ";

std::string Launcher(int ranks) {
  return std::string("env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ") +
         "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive " + PIPETRAIN_MPIRUN + " " +
         std::to_string(ranks) + " ";
}

testing::RunResult RunMpi(int ranks, const std::string& args) {
  return testing::RunCommand(Launcher(ranks) + PIPETRAIN_BINARY + " " + args);
}

// A digest worth comparing: 16 hex digits, never an empty parse.
std::string CheckedDigest(const testing::RunResult& r) {
  return testing::CheckedFinalDigest(r.output);
}

const std::string& CpuDigest() {
  static const std::string digest = [] {
    const auto r = RunPipetrain(kBase);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return CheckedDigest(r);
  }();
  return digest;
}

struct Placement {
  const char* name;
  int ranks;
  const char* args;
};

class EmulatedPlacementTest : public ::testing::TestWithParam<Placement> {};

TEST_P(EmulatedPlacementTest, PrintsTheOneProcessCpuDigest) {
  const Placement& c = GetParam();
  const auto r = RunMpi(c.ranks, std::string(kBase) + "--set device=emulated " + c.args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("on emulated")) << r.output;
  EXPECT_EQ(CheckedDigest(r), CpuDigest()) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    Placements, EmulatedPlacementTest,
    ::testing::Values(
        // `device` under a launcher with one rank: the bug where mpirun
        // silently trained on the CPU.
        Placement{"one_rank", 1, ""},
        Placement{"pp4_1f1b", 4, "--set pipeline.stages=4 --set pipeline.schedule=1f1b"},
        Placement{"pp2_gpipe", 2, "--set pipeline.stages=2 --set pipeline.schedule=gpipe"},
        Placement{"pp2_interleaved", 2,
                  "--set pipeline.stages=2 --set pipeline.schedule=interleaved "
                  "--set pipeline.chunks=2"},
        Placement{"pp2_recompute_full", 2,
                  "--set pipeline.stages=2 --set pipeline.recompute=full"}),
    [](const ::testing::TestParamInfo<Placement>& info) { return info.param.name; });

TEST(EmulatedDataParallelTest, TwoStagesTimesTwoReplicasFollowTheOneProcessRunStepByStep) {
  const std::string dir = ::testing::TempDir() + "/emulated_dp";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // One process with 4 micro-batches sees the global batch of 2 replicas × 2.
  const std::string base = std::string(kBase) + "--steps 6 --set log_interval=1 ";
  const auto single = RunPipetrain(base + "--metrics " + dir + "/single.jsonl");
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto dp = RunMpi(4, base +
                                "--set device=emulated --set pipeline.stages=2 "
                                "--set data_parallel=2 --set microbatches=2 --metrics " +
                                dir + "/dp.jsonl");
  ASSERT_EQ(dp.exit_code, 0) << dp.output;
  const auto loss_a = testing::MetricsValues(dir + "/single.jsonl", "loss");
  const auto loss_b = testing::MetricsValues(dir + "/dp.jsonl", "loss");
  ASSERT_EQ(loss_a.size(), 6u);
  // docs/parallel.md: replicas add the micro-batch gradients in another
  // order, so the runs part in the last bits of f32 and drift slowly.
  EXPECT_EQ(testing::StepsDiffer(loss_a, loss_b, 1e-7), "") << dp.output;
  EXPECT_EQ(testing::StepsDiffer(testing::MetricsValues(dir + "/single.jsonl", "grad_norm"),
                                 testing::MetricsValues(dir + "/dp.jsonl", "grad_norm"), 1e-6),
            "")
      << dp.output;
  // The first step's loss is computed before any update: only the order of
  // four additions differs.
  EXPECT_LE(std::abs(loss_a[0] - loss_b[0]), 1e-12 * loss_a[0]);
}

TEST(EmulatedResumeTest, KilledAndResumedPipelineEndsOnTheCpuDigest) {
  const std::string dir = ::testing::TempDir() + "/emulated_kill";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string run_dir = dir + "/run";
  const std::string args = std::string(kBase) +
                           "--steps 8 --set device=emulated --set pipeline.stages=4 "
                           "--set checkpoint_interval=2 --set log_interval=1 --set output_dir=" +
                           run_dir;
  const auto straight = RunPipetrain(std::string(kBase) + "--steps 8");
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  // Kill every rank (mpirun's children; no signal handler runs) and mpirun
  // once step 4 is saved.
  const std::string log = dir + "/log.txt";
  const auto killed = testing::RunCommand(
      "( " + Launcher(4) + PIPETRAIN_BINARY + " " + args + " > " + log +
      " 2>&1 & pid=$!; for i in $(seq 1200); do grep -q 'saved step 4' " + log +
      " && break; sleep 0.05; done; pkill -KILL -P $pid; kill -KILL $pid; wait $pid; "
      "echo exit=$?; cat " +
      log + " )");
  ASSERT_THAT(killed.output, HasSubstr("saved step 4")) << killed.output;
  EXPECT_THAT(killed.output, ::testing::Not(HasSubstr("final:"))) << killed.output;
  const auto resumed = RunMpi(4, args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resumed from")) << resumed.output;
  EXPECT_EQ(CheckedDigest(resumed), CheckedDigest(straight));
}

TEST(EmulatedResumeTest, PreemptedPipelineCheckpointsAndResumes) {
  const std::string dir = ::testing::TempDir() + "/emulated_preempt";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string run_dir = dir + "/run";
  const std::string args = std::string(kBase) +
                           "--steps 40 --set device=emulated --set pipeline.stages=2 "
                           "--set data_parallel=2 --set microbatches=2 --set log_interval=1 "
                           "--set output_dir=" +
                           run_dir;
  const std::string log = dir + "/log.txt";
  // mpirun passes SIGUSR1 on to every rank, as Slurm's --signal does.
  const auto stopped = testing::RunCommand(
      "( " + Launcher(4) + PIPETRAIN_BINARY + " " + args + " > " + log +
      " 2>&1 & pid=$!; for i in $(seq 1200); do grep -q 'step 3/' " + log +
      " && break; sleep 0.05; done; kill -USR1 $pid; wait $pid; echo exit=$?; cat " + log + " )");
  EXPECT_THAT(stopped.output, HasSubstr("preempted by a signal after step")) << stopped.output;
  ASSERT_TRUE(std::filesystem::exists(run_dir + "/latest")) << stopped.output;
  const auto resumed = RunMpi(4, args + " --steps 6");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resumed from")) << resumed.output;
  CheckedDigest(resumed);
}

TEST(CudaWithoutGpuTest, EveryRankStopsWithTheReason) {
  const auto r = RunMpi(2, std::string(kBase) + "--set device=cuda --set pipeline.stages=2");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("final:"))) << r.output;
  // Both ranks say why, in their own words (no rank trains on the CPU).
  EXPECT_THAT(r.output, HasSubstr("rank 0 of 2: train.device is \"cuda\"")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rank 1 of 2: train.device is \"cuda\"")) << r.output;
}

}  // namespace
}  // namespace pipetrain
