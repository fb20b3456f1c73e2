// `pipetrain train` end to end, as a user runs it.
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using testing::RunPipetrain;
using testing::StepValues;

// The final params_digest of a run, checked to be one (testing::
// CheckedFinalDigest): when the "final:" line is missing or changes form, an
// empty parse would make "" == "" pass a comparison that checked nothing.
std::string CheckedDigest(const testing::RunResult& run) {
  return testing::CheckedFinalDigest(run.output);
}

TEST(TrainCommandTest, SameSeedSameDigestOtherSeedOther) {
  const auto a = RunPipetrain("train --spec configs/tiny.pbtxt --steps 3 --seed 7");
  const auto b = RunPipetrain("train --spec configs/tiny.pbtxt --steps 3 --seed 7");
  const auto c = RunPipetrain("train --spec configs/tiny.pbtxt --steps 3 --seed 8");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_EQ(StepValues(a.output, "loss").size(), 3u) << a.output;
  EXPECT_EQ(CheckedDigest(a), CheckedDigest(b));
  EXPECT_NE(CheckedDigest(a), CheckedDigest(c));
  EXPECT_NE(a.output.find("final: step=3 "), std::string::npos) << a.output;
}

// `pipetrain --spec FILE`, the line users type under mpirun and srun, trains:
// with a flag first, the command is train.
TEST(TrainCommandTest, TrainIsTheCommandWhenTheFirstArgumentIsAFlag) {
  const auto verb = RunPipetrain("train --spec configs/tiny.pbtxt --steps 2 --set log_interval=1");
  const auto bare = RunPipetrain("--spec configs/tiny.pbtxt --steps 2 --set log_interval=1");
  const auto bare_equals = RunPipetrain("--spec=configs/tiny.pbtxt --set steps=2");
  ASSERT_EQ(verb.exit_code, 0) << verb.output;
  ASSERT_EQ(bare.exit_code, 0) << bare.output;
  ASSERT_EQ(bare_equals.exit_code, 0) << bare_equals.output;
  EXPECT_EQ(CheckedDigest(bare), CheckedDigest(verb));
  EXPECT_EQ(CheckedDigest(bare_equals), CheckedDigest(verb));
  // Help still answers, and says so.
  const auto help = RunPipetrain("help");
  EXPECT_THAT(help.output, ::testing::HasSubstr("pipetrain --spec FILE"));
}

TEST(TrainCommandTest, DigestDoesNotDependOnTheThreadCount) {
  // Every reduction, GEMMs included, is split by the shape, never by the
  // number of threads: a run is reproducible on any machine size.
  const std::string args = "train --spec configs/tiny.pbtxt --steps 3 --set microbatches=2";
  const auto one =
      testing::RunCommand("env OMP_NUM_THREADS=1 " + std::string(PIPETRAIN_BINARY) + " " + args);
  const auto two =
      testing::RunCommand("env OMP_NUM_THREADS=2 " + std::string(PIPETRAIN_BINARY) + " " + args);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_EQ(CheckedDigest(one), CheckedDigest(two));
}

TEST(TrainCommandTest, SetOverridesChangeTheRun) {
  const auto base = RunPipetrain("train --spec configs/tiny.pbtxt --steps 2");
  const auto changed =
      RunPipetrain("train --spec configs/tiny.pbtxt --steps 2 --set train.lr=0.0001");
  ASSERT_EQ(base.exit_code, 0) << base.output;
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_NE(CheckedDigest(base), CheckedDigest(changed));
  const auto pre_ln = RunPipetrain("train --spec configs/tiny.pbtxt --steps 2 --set norm=PRE_LN");
  ASSERT_EQ(pre_ln.exit_code, 0) << pre_ln.output;
  EXPECT_NE(pre_ln.output.find("PRE_LN"), std::string::npos) << pre_ln.output;
}

TEST(TrainCommandTest, BadInputIsReportedNotCrashed) {
  auto r = RunPipetrain("train --spec configs/tiny.pbtxt --set model.d_model=30");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("d_model"), std::string::npos) << r.output;
  r = RunPipetrain("train --spec configs/does_not_exist.pbtxt");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("does_not_exist.pbtxt"), std::string::npos) << r.output;
  r = RunPipetrain("train");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--spec"), std::string::npos) << r.output;
  r = RunPipetrain("fly");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(TrainCommandTest, MicrobatchesAccumulateToTheSameGradient) {
  // Splitting a step into micro-batches changes only summation order.
  const auto one = RunPipetrain("train --spec configs/tiny.pbtxt --steps 2 --set dtype=f64");
  const auto four = RunPipetrain(
      "train --spec configs/tiny.pbtxt --steps 2 --set dtype=f64 --set microbatches=4 "
      "--set attention_dropout=0 --set activation_dropout=0 --set residual_dropout=0");
  const auto one_nodrop = RunPipetrain(
      "train --spec configs/tiny.pbtxt --steps 2 --set dtype=f64 "
      "--set attention_dropout=0 --set activation_dropout=0 --set residual_dropout=0");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ASSERT_EQ(four.exit_code, 0) << four.output;
  const auto l1 = StepValues(one_nodrop.output, "loss");
  const auto l4 = StepValues(four.output, "loss");
  ASSERT_EQ(l1.size(), 2u);
  ASSERT_EQ(l4.size(), 2u);
  EXPECT_NEAR(l1[0], l4[0], 1e-9);
  EXPECT_NEAR(l1[1], l4[1], 1e-6);
}

TEST(TrainCommandTest, TinyConfigHalvesItsLoss) {
  const auto r = RunPipetrain("train --spec configs/tiny.pbtxt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto loss = StepValues(r.output, "loss");
  ASSERT_GE(loss.size(), 10u) << r.output;
  EXPECT_LT(loss.back(), 0.5 * loss.front()) << r.output;
}

// A scheduler's warning signal stops the run after the step in progress with
// a checkpoint and exit status 75; running the same command again resumes
// and ends exactly where an uninterrupted run ends.
TEST(TrainCommandTest, SignalStopsWithACheckpointAndTheRerunEndsLikeAStraightRun) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "preemption";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string args = "train --spec configs/tiny.pbtxt --steps 300 --set log_interval=1 ";
  const auto straight = RunPipetrain(args + "--set output_dir=" + (dir / "straight").string());
  ASSERT_EQ(straight.exit_code, 0) << straight.output;

  const std::string run_dir = (dir / "stopped").string();
  const std::string log = (dir / "log.txt").string();
  const auto stopped = testing::RunCommand(
      std::string("( ") + PIPETRAIN_BINARY + " " + args + "--set output_dir=" + run_dir + " > " +
      log + " 2>&1 & pid=$!; for i in $(seq 1200); do grep -q 'step 20/' " + log +
      " && break; sleep 0.05; done; kill -USR1 $pid; wait $pid; echo exit=$?; cat " + log + " )");
  EXPECT_THAT(stopped.output, ::testing::HasSubstr("exit=75")) << stopped.output;
  EXPECT_THAT(stopped.output, ::testing::HasSubstr("preempted by a signal after step"));
  ASSERT_TRUE(std::filesystem::exists(dir / "stopped" / "latest")) << stopped.output;

  const auto resumed = RunPipetrain(args + "--set output_dir=" + run_dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, ::testing::HasSubstr("resumed from"));
  EXPECT_EQ(CheckedDigest(resumed), CheckedDigest(straight));
}

}  // namespace
}  // namespace pipetrain
