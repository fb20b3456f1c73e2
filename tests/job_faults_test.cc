// Faults of a multi-rank job end it with a message, never a hang: ranks
// started differently refuse to start together (issue 13 §4), and a
// stopped rank makes its peers' watchdogs end the job (§5).
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/run_binary.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;
using testing::RunCommand;

std::string Fresh(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/job_faults_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

const std::string kEnv =
    "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
    "OMP_WAIT_POLICY=passive ";

// Two ranks of one pipeline, each with its own binary and arguments (mpirun's
// MPMD form), bounded in time.
testing::RunResult TwoRanks(const std::string& binary0, const std::string& args0,
                            const std::string& binary1, const std::string& args1) {
  return RunCommand(kEnv + "timeout 120 " + PIPETRAIN_MPIRUN + " 1 " + binary0 + " " + args0 +
                    " : -np 1 " + binary1 + " " + args1 + " 2>&1");
}

std::string Train(const std::string& dir, const std::string& extra) {
  return "train --spec configs/tiny.pbtxt --set pipeline.stages=2 --set output_dir=" + dir + " " +
         extra;
}

// Before: a different --steps on one rank hung the job; a different ffn_dim
// exited 0 with checkpoints no run can resume.
TEST(RankAgreementTest, RanksStartedWithDifferentSpecsStopTogetherNamingTheFields) {
  const std::string dir = Fresh("specs");
  const auto run = TwoRanks(PIPETRAIN_BINARY, Train(dir, "--steps 10"), PIPETRAIN_BINARY,
                            Train(dir, "--steps 20 --set ffn_dim=64"));
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.exit_code, 124) << "the job hung:\n" << run.output;
  EXPECT_THAT(run.output, HasSubstr("1 of 2 ranks were started differently from rank 0"));
  EXPECT_THAT(run.output, HasSubstr("rank 1: spec fields (rank 0 -> this rank)"));
  EXPECT_THAT(run.output, HasSubstr("model.ffn_dim: 128 -> 64"));
  EXPECT_THAT(run.output, HasSubstr("train.steps: 10 -> 20"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/latest"));
}

TEST(RankAgreementTest, RanksRunningAnotherBuildStopTogether) {
  const std::string dir = Fresh("build");
  // The same program with one byte more: another build to the fingerprint.
  const std::string other = dir + "/pipetrain_other";
  std::filesystem::copy_file(PIPETRAIN_BINARY, other);
  ASSERT_EQ(RunCommand("printf x >> " + other + " && chmod +x " + other).exit_code, 0);
  const auto run =
      TwoRanks(PIPETRAIN_BINARY, Train(dir, "--steps 10"), other, Train(dir, "--steps 10"));
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.exit_code, 124) << "the job hung:\n" << run.output;
  EXPECT_THAT(run.output, HasSubstr("rank 1: another pipetrain build"));
}

TEST(RankAgreementTest, RanksThatAgreeTrain) {
  const std::string dir = Fresh("agree");
  const auto run = TwoRanks(PIPETRAIN_BINARY, Train(dir, "--steps 3"), PIPETRAIN_BINARY,
                            Train(dir, "--steps 3"));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("final: step=3"));
}

// Before: SIGSTOP on one rank of 4 left every other rank waiting forever.
TEST(CommWatchdogTest, AStoppedRankEndsTheJobWithinTheTimeout) {
  const std::string dir = Fresh("stopped");
  const int timeout_s = 8;  // far above a tiny step, even on a loaded machine
  const auto run =
      RunCommand(kEnv + "bash tests/testing/stop_one_rank.sh \"" + PIPETRAIN_MPIRUN + "\" " +
                 PIPETRAIN_BINARY + " " + dir + " " + std::to_string(timeout_s));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  ASSERT_THAT(run.output, HasSubstr("rc="));
  const int rc = std::atoi(run.output.substr(run.output.find("rc=") + 3).c_str());
  const double seconds = std::atof(run.output.substr(run.output.find("seconds=") + 8).c_str());
  EXPECT_EQ(rc, 4) << run.output;  // kExitCommStalled, passed on by mpirun
  EXPECT_LT(seconds, timeout_s + 30) << run.output;
  // The ranks waiting on the stopped one name themselves, what they wait on
  // and the peer ("has waited N s for ..."); the stopped one, woken by
  // mpirun's SIGCONT, may say it was frozen. Either is the watchdog's line.
  EXPECT_THAT(run.output, HasSubstr("error: [watchdog] world rank ")) << run.output;
  EXPECT_THAT(run.output, HasSubstr("(train.comm_timeout_s=8)")) << run.output;
}

TEST(CommWatchdogTest, TheTimeoutIsBounded) {
  const auto run = testing::RunPipetrain(
      "train --spec configs/tiny.pbtxt --steps 1 --set comm_timeout_s=-2 2>&1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("train.comm_timeout_s=-2 must be -1 (off) or 1..604800"));
}

}  // namespace
}  // namespace pipetrain
