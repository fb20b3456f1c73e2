// Launching under Slurm without Slurm: the trainer reads rank, world size and
// local rank from the SLURM_* variables srun sets, and the flagship batch
// script (deploy/slurm/m2m_200L.sbatch) builds its srun or mpirun line,
// forwards the scheduler's warning signal and requeues a preempted job. The
// variables are set by hand, srun/mpirun/scontrol are stand-ins on PATH, and
// every command runs under `timeout 60` so that none can hang the suite.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace pipetrain {
namespace {

using testing::CheckedFinalDigest;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;
using testing::RunResult;
using testing::StepValues;

constexpr char kScript[] = "deploy/slurm/m2m_200L.sbatch";

// `timeout 60 env -u ... ` with every launcher variable of this test's own
// environment removed (a test run inside an allocation, or under mpirun, must
// see only the variables it sets), Open MPI's permission to run as root kept.
std::string CleanEnv() {
  std::string command = "timeout 60 env";
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string variable(*entry);
    const std::string name = variable.substr(0, variable.find('='));
    for (const char* prefix :
         {"SLURM_", "SLURMD_", "SRUN_", "OMPI_", "PMIX_", "PMI_", "PIPETRAIN_"}) {
      if (name.rfind(prefix, 0) == 0 && name.rfind("OMPI_ALLOW_RUN_AS_ROOT", 0) != 0) {
        absl::StrAppend(&command, " -u ", name);
      }
    }
  }
  return command + " OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ";
}

// What srun sets in each task of a step of `tasks` tasks.
std::string SrunStep(int rank, int tasks, int allocation_tasks) {
  return absl::StrCat("SLURM_JOB_ID=4242 SLURM_STEP_ID=0 SLURM_PROCID=", rank,
                      " SLURM_LOCALID=", rank, " SLURM_STEP_NUM_TASKS=", tasks,
                      " SLURM_NTASKS=", allocation_tasks, " ");
}

std::string TinyRun(const std::string& output_dir) {
  return absl::StrCat(PIPETRAIN_BINARY,
                      " --spec configs/tiny.pbtxt --steps 2 --set output_dir=", output_dir);
}

// Under srun the process is one rank of an MPI world, so it takes the
// launched path (MPI, which a single process initialises on its own) and
// logs the placement line the plain one-process run leaves out; it trains the
// very same model.
TEST(SlurmEnvironmentTest, AnSrunStepOfOneTrainsTheSameModelOverMpi) {
  testing::TempDir dir("slurm_launch_test");
  const RunResult plain = RunCommand(CleanEnv() + TinyRun(dir / "plain"));
  const RunResult slurm = RunCommand(CleanEnv() + SrunStep(0, 1, 1) + TinyRun(dir / "slurm"));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  ASSERT_EQ(slurm.exit_code, 0) << slurm.output;
  EXPECT_EQ(StepValues(slurm.output, "loss").size(), 2u) << slurm.output;
  EXPECT_THAT(slurm.output, HasSubstr("pipeline: 1 stages x 1 chunks")) << slurm.output;
  EXPECT_THAT(plain.output, Not(HasSubstr("pipeline:"))) << plain.output;
  EXPECT_EQ(CheckedFinalDigest(slurm.output), CheckedFinalDigest(plain.output));
}

// A step may ask for fewer tasks than the allocation holds: the step's size
// (SLURM_STEP_NUM_TASKS) is the world, not the allocation's (SLURM_NTASKS).
TEST(SlurmEnvironmentTest, AStepSmallerThanItsAllocationTrains) {
  testing::TempDir dir("slurm_launch_test");
  const RunResult r = RunCommand(CleanEnv() + SrunStep(0, 1, 64) + TinyRun(dir.str()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(StepValues(r.output, "loss").size(), 2u) << r.output;
  CheckedFinalDigest(r.output);
}

// Each variable is read where the trainer starts, and one that cannot be
// right stops it with its name and value: SLURM_LOCALID (which picks the
// GPU), and the rank against the step's size, SLURM_STEP_NUM_TASKS, which
// wins over the allocation's SLURM_NTASKS, or SLURM_NTASKS alone.
TEST(SlurmEnvironmentTest, AVariableThatCannotBeRightIsNamed) {
  testing::TempDir dir("slurm_launch_test");
  struct Case {
    std::string variables;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_STEP_NUM_TASKS=1 SLURM_LOCALID=-1",
            "environment variable SLURM_LOCALID=\"-1\" is not an integer >= 0"},
           {"SLURM_STEP_ID=0 SLURM_PROCID=3 SLURM_STEP_NUM_TASKS=2 SLURM_NTASKS=8",
            "SLURM_PROCID=3 is not below SLURM_STEP_NUM_TASKS=2"},
           {"SLURM_STEP_ID=0 SLURM_PROCID=3 SLURM_NTASKS=2",
            "SLURM_PROCID=3 is not below SLURM_NTASKS=2"},
       }) {
    const RunResult r = RunCommand(CleanEnv() + c.variables + " " + TinyRun(dir.str()));
    EXPECT_EQ(r.exit_code, 1) << c.variables << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << r.output;
    EXPECT_THAT(r.output, Not(HasSubstr("step 1/"))) << r.output;
  }
}

// The batch script's own shell has SLURM_PROCID=0 and SLURM_NTASKS=64 but no
// SLURM_STEP_ID: it is one process, not rank 0 of 64, and trains alone.
TEST(SlurmEnvironmentTest, TheBatchShellItselfIsOneProcess) {
  testing::TempDir dir("slurm_launch_test");
  const RunResult r =
      RunCommand(CleanEnv() + "SLURM_JOB_ID=4242 SLURM_PROCID=0 SLURM_NTASKS=64 SLURM_LOCALID=0 " +
                 TinyRun(dir.str()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(StepValues(r.output, "loss").size(), 2u) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("pipeline:"))) << r.output;
}

// A process whose SLURM_* variables say "rank r of 2" but which MPI made a
// world of one (started without srun, or by an srun whose MPI plugin did not
// reach MPI) must stop, naming the variable and saying how to launch, instead
// of training alone while its twin does the same into the same output_dir.
TEST(SlurmEnvironmentTest, AWorldThatDisagreesWithSlurmFailsSayingHowToLaunch) {
  testing::TempDir dir("slurm_launch_test");
  for (int rank : {0, 1}) {
    const RunResult r = RunCommand(CleanEnv() + SrunStep(rank, 2, 2) + TinyRun(dir.str()));
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, Not(HasSubstr("final:"))) << r.output;
    EXPECT_THAT(r.output, HasSubstr("SLURM_STEP_NUM_TASKS=2")) << r.output;
    EXPECT_THAT(r.output, HasSubstr("MPI says rank 0 of 1")) << r.output;
    EXPECT_THAT(r.output, HasSubstr("srun")) << r.output;
  }
}

// --- deploy/slurm/m2m_200L.sbatch -------------------------------------------

TEST(SbatchScriptTest, DryRunPrintsTheSrunLine) {
  const RunResult r = RunCommand(CleanEnv() + "PIPETRAIN_DRY_RUN=1 bash " + kScript);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("srun ", 0), 0u) << r.output;
  // 8 nodes x 8 GPUs, one rank per GPU, 8 cores each.
  for (const char* flag : {"--nodes=8 ", "--ntasks=64 ", "--ntasks-per-node=8 ",
                           "--gpus-per-node=8 ", "--cpus-per-task=8 ", "--kill-on-bad-exit=1 "}) {
    EXPECT_THAT(r.output, HasSubstr(flag)) << r.output;
  }
  EXPECT_THAT(r.output, HasSubstr("pipetrain --spec configs/m2m_200L.pbtxt")) << r.output;
}

TEST(SbatchScriptTest, DryRunPrintsTheMpirunLineAndPassesFlagsOn) {
  const RunResult r = RunCommand(
      CleanEnv() + "PIPETRAIN_LAUNCHER=mpirun PIPETRAIN_DRY_RUN=1 NCCL_DEBUG=INFO bash " + kScript +
      " --set steps=5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("mpirun -np 64 --map-by ppr:8:node ", 0), 0u) << r.output;
  EXPECT_THAT(r.output, HasSubstr("-x NCCL_DEBUG ")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("-x OMP_NUM_THREADS ")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("pipetrain --spec configs/m2m_200L.pbtxt --set steps=5"))
      << r.output;
}

TEST(SbatchScriptTest, AnUnknownLauncherIsRefusedByName) {
  const RunResult r =
      RunCommand(CleanEnv() + "PIPETRAIN_LAUNCHER=aprun PIPETRAIN_DRY_RUN=1 bash " + kScript);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("PIPETRAIN_LAUNCHER=aprun is neither srun nor mpirun"))
      << r.output;
}

TEST(SbatchScriptTest, PassesBashAndShellcheck) {
  const RunResult syntax = RunCommand(std::string("timeout 60 bash -n ") + kScript);
  EXPECT_EQ(syntax.exit_code, 0) << syntax.output;
  if (RunCommand("command -v shellcheck").exit_code != 0) {
    GTEST_SKIP() << "shellcheck is not installed (apt-get install shellcheck); bash -n passed";
  }
  const RunResult lint =
      RunCommand(std::string("timeout 60 shellcheck ") + kScript + " deploy/slurm/train.sbatch" +
                 " && timeout 60 shellcheck -s bash deploy/slurm/requeue_decision.sh");
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
}

// Slurm's early warning (--signal=B:USR1@120) reaches the batch shell, which
// passes SIGUSR1 to the launcher; the launcher passes it to the rank; the
// rank checkpoints and exits 75; the script requeues the job and exits 0.
// `launcher` is a stand-in written to bin/: it records its arguments and
// starts the binary it was given with the rest of the line, the 3.2B
// flagship's spec swapped for tiny's (one core trains it in milliseconds a
// step, and the test does not depend on what m2m_200L.pbtxt holds).
// How the stop reaches the job: the scheduler's early warning to the batch
// shell, then SIGTERM as at the time limit (the script forwards one SIGUSR1).
constexpr char kWarnTheScript[] = "kill -USR1 $pid; sleep 0.02; kill -TERM $pid; ";
// scancel, or a time limit without the early warning: Slurm signals every
// process of the step, the launcher among them; mpirun answers SIGTERM by
// exiting 1 after its ranks saved, so only their stop marker tells.
constexpr char kTerminateTheLauncher[] = "kill -TERM $(pgrep -P $pid); ";

RunResult ExpectPreemptionRequeues(const std::string& launcher_name,
                                   const std::string& launcher_body, const std::string& launch_flag,
                                   const std::string& stop = kWarnTheScript) {
  testing::TempDir dir("slurm_launch_test");
  std::filesystem::create_directories(dir / "bin");
  auto write_tool = [&](const std::string& name, const std::string& body) {
    const std::string path = dir / ("bin/" + name);
    std::ofstream(path) << "#!/usr/bin/env bash\n" << body;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  };
  write_tool(launcher_name,
             "printf '%s\\n' \"$*\" > " + (dir / "launch_args") +
                 "\n"
                 "while [ \"$#\" -gt 0 ] && [ \"$1\" != \"$PIPETRAIN_BINARY\" ]; do shift; done\n"
                 "args=()\n"
                 "for arg in \"$@\"; do\n"
                 "  if [ \"$arg\" = configs/m2m_200L.pbtxt ]; then arg=configs/tiny.pbtxt; fi\n"
                 "  args+=(\"$arg\")\n"
                 "done\n" +
                 launcher_body);
  write_tool("scontrol", "echo \"scontrol $*\" >> " + (dir / "scontrol_calls") + "\n");
  const std::string log = dir / "log.txt";
  const std::string run = dir / "run";
  const std::string script_env = absl::StrCat(
      "PATH=", dir / "bin", ":$PATH SLURM_JOB_ID=4242 PIPETRAIN_BINARY=", PIPETRAIN_BINARY,
      " PIPETRAIN_LAUNCHER=", launcher_name, " ");
  // The script is started in the background like sbatch would, and warned
  // once the rank has logged its third step (its handlers are in place);
  // SIGTERM follows, as at the time limit when a checkpoint is slow: the
  // script must not pass on a second SIGUSR1, which would kill the rank
  // (pipetrain's handler fires once). The script gets a session of its own so
  // that whatever a broken script leaves running is stopped at the end.
  const RunResult r = RunCommand(absl::StrCat(
      CleanEnv(), "bash -c '", script_env, "setsid bash ", kScript,
      " --steps 1000000 --set log_interval=1 --set output_dir=", run, " > ", log,
      " 2>&1 & pid=$!; for i in $(seq 600); do grep -q \"step 3/\" ", log,
      " && break; sleep 0.05; done; ", stop,
      "wait $pid; echo script_exit=$?; kill -TERM -- -$pid 2>/dev/null; true'; cat ", log));
  EXPECT_THAT(r.output, HasSubstr("preempted by a signal after step")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("requeueing job 4242")) << r.output;
  EXPECT_THAT(r.output, HasSubstr("script_exit=0")) << r.output;
  EXPECT_TRUE(std::filesystem::exists(run + "/latest")) << r.output;
  EXPECT_EQ(testing::ReadAll(dir / "scontrol_calls"), "scontrol requeue 4242\n") << r.output;
  const std::string launch_args = testing::ReadAll(dir / "launch_args");
  EXPECT_THAT(launch_args, HasSubstr(launch_flag)) << launch_args;
  EXPECT_THAT(launch_args,
              HasSubstr(absl::StrCat(PIPETRAIN_BINARY, " --spec configs/m2m_200L.pbtxt --steps")))
      << launch_args;
  return r;
}

TEST(SbatchScriptTest, SrunPathForwardsTheWarningAndRequeues) {
  // srun passes SIGUSR1 on to its tasks (srun(1), "Signals"): the stand-in
  // execs the one rank, so the signal the script forwards reaches it directly.
  ExpectPreemptionRequeues("srun", "exec env " + SrunStep(0, 1, 1) + "\"${args[@]}\"\n",
                           "--ntasks=64 ");
}

TEST(SbatchScriptTest, MpirunPathForwardsTheWarningAndRequeues) {
  // The real mpirun, one rank: it passes SIGUSR1 on to its processes.
  const RunResult which = RunCommand("command -v mpirun");
  if (which.exit_code != 0) GTEST_SKIP() << "mpirun is not installed";
  std::string mpirun = which.output.substr(0, which.output.find('\n'));
  ExpectPreemptionRequeues("mpirun", "exec " + mpirun + " -np 1 --oversubscribe \"${args[@]}\"\n",
                           "-np 64 ");
}

// The case: SIGTERM straight to mpirun made it exit 1 although both
// ranks had saved, and the script, deciding on 75 alone, did not requeue.
TEST(SbatchScriptTest, MpirunTerminatedDirectlyStillRequeuesFromTheRanksMarker) {
  const RunResult which = RunCommand("command -v mpirun");
  if (which.exit_code != 0) GTEST_SKIP() << "mpirun is not installed";
  std::string mpirun = which.output.substr(0, which.output.find('\n'));
  const RunResult r = ExpectPreemptionRequeues(
      "mpirun",
      "exec " + mpirun + " -np 2 --oversubscribe \"${args[@]}\" --set pipeline.stages=2\n",
      "-np 64 ", kTerminateTheLauncher);
  EXPECT_THAT(r.output, HasSubstr("the launcher exited with 1, but the ranks stopped for "
                                  "preemption with a checkpoint (preempted step="))
      << r.output;
}

// The decision itself, for every status a job can end with.
TEST(RequeueDecisionTest, RequeuesOnSeventyFiveOrTheRanksMarkerOnly) {
  testing::TempDir dir("requeue_decision_test");
  const std::string marker = dir / "marker";
  std::ofstream(marker) << "preempted step=7 checkpoint=runs/x\n";
  const std::string missing = dir / "missing";
  auto decide = [&](int status, const std::string& file) {
    return RunCommand(
        absl::StrCat("bash -c 'source deploy/slurm/requeue_decision.sh; "
                     "pipetrain_should_requeue ",
                     status, " ", file, "'"));
  };
  EXPECT_EQ(decide(75, missing).exit_code, 0);
  const RunResult marked = decide(1, marker);
  EXPECT_EQ(marked.exit_code, 0);
  EXPECT_THAT(marked.output, HasSubstr("preempted step=7"));
  EXPECT_EQ(decide(143, marker).exit_code, 0);  // killed by SIGTERM, after saving
  EXPECT_EQ(decide(0, missing).exit_code, 1);
  EXPECT_EQ(decide(1, missing).exit_code, 1);
  const RunResult diverged = decide(3, missing);
  EXPECT_EQ(diverged.exit_code, 1);
  EXPECT_THAT(diverged.output, HasSubstr("training diverged"));
  EXPECT_EQ(decide(4, missing).exit_code, 1);
  EXPECT_EQ(decide(1, "\"\"").exit_code, 1);  // no marker variable at all
}

// The marker is written only when asked for, and only after the checkpoint.
TEST(RequeueDecisionTest, TheRanksWriteTheMarkerAfterTheirCheckpoint) {
  testing::TempDir dir("stop_marker_test");
  const std::string marker = dir / "marker";
  const std::string run = dir / "run";
  const RunResult r = RunCommand(absl::StrCat(
      CleanEnv(), "PIPETRAIN_STOP_MARKER=", marker, " bash -c '", PIPETRAIN_BINARY,
      " train --spec configs/tiny.pbtxt --steps 1000000 --set output_dir=", run, " > ", dir / "log",
      " 2>&1 & pid=$!; for i in $(seq 600); do grep -q \"step 3/\" ", dir / "log",
      " && break; sleep 0.05; done; kill -INT $pid; wait $pid; echo exit=$?'"));
  EXPECT_THAT(r.output, HasSubstr("exit=75")) << r.output;
  const std::string recorded = testing::ReadAll(marker);
  EXPECT_THAT(recorded, HasSubstr("preempted step=")) << r.output;
  EXPECT_THAT(recorded, HasSubstr("checkpoint=" + run));
  EXPECT_TRUE(std::filesystem::exists(run + "/latest"));
}

}  // namespace
}  // namespace pipetrain
