#include "parallel/topology.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;

// Every variable DetectEnvironment may read: cleared before each test (the
// test itself may run under mpirun or inside a Slurm job) and restored after.
const char* const kLauncherVariables[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "SLURM_PROCID",         "SLURM_NTASKS",         "SLURM_STEP_NUM_TASKS",
    "SLURM_LOCALID",        "SLURM_STEP_ID",        "SLURM_STEPID",
};

class EnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kLauncherVariables) {
      const char* value = std::getenv(name);
      if (value != nullptr) saved_[name] = value;
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (const char* name : kLauncherVariables) unsetenv(name);
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }
  static void Set(const char* name, const char* value) { setenv(name, value, 1); }

 private:
  std::map<std::string, std::string> saved_;
};

TEST_F(EnvironmentTest, NoLauncherIsOneProcess) {
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, Launcher::kNone);
  EXPECT_EQ(env->rank, 0);
  EXPECT_EQ(env->world_size, 1);
  EXPECT_EQ(env->local_rank, 0);
  EXPECT_TRUE(env->note.empty());
}

TEST_F(EnvironmentTest, ReadsOpenMpi) {
  Set("OMPI_COMM_WORLD_RANK", "5");
  Set("OMPI_COMM_WORLD_SIZE", "8");
  Set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, Launcher::kOpenMpi);
  EXPECT_STREQ(LauncherName(env->launcher), "Open MPI");
  EXPECT_EQ(env->rank, 5);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->local_rank, 1);
}

TEST_F(EnvironmentTest, OpenMpiWinsOverTheSlurmAllocationAroundIt) {
  // mpirun inside an sbatch script: the SLURM_* variables are the script's.
  Set("SLURM_PROCID", "0");
  Set("SLURM_NTASKS", "16");
  Set("SLURM_STEP_ID", "0");
  Set("OMPI_COMM_WORLD_RANK", "3");
  Set("OMPI_COMM_WORLD_SIZE", "4");
  Set("OMPI_COMM_WORLD_LOCAL_RANK", "3");
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, Launcher::kOpenMpi);
  EXPECT_EQ(env->rank, 3);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_rank, 3);
}

TEST_F(EnvironmentTest, ReadsASlurmStepPreferringTheStepSize) {
  Set("SLURM_PROCID", "6");
  Set("SLURM_STEP_ID", "2");
  Set("SLURM_STEP_NUM_TASKS", "8");
  Set("SLURM_NTASKS", "16");
  Set("SLURM_LOCALID", "2");
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, Launcher::kSlurm);
  EXPECT_EQ(env->rank, 6);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->local_rank, 2);
}

TEST_F(EnvironmentTest, SlurmFallsBackToNtasks) {
  Set("SLURM_PROCID", "1");
  Set("SLURM_STEPID", "0");
  Set("SLURM_NTASKS", "2");
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, Launcher::kSlurm);
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 2);
  EXPECT_EQ(env->local_rank, 0);  // SLURM_LOCALID unset
}

TEST_F(EnvironmentTest, SlurmBatchScriptWithoutSrunIsOneProcessWithANote) {
  Set("SLURM_PROCID", "0");
  Set("SLURM_NTASKS", "16");
  Set("SLURM_LOCALID", "0");
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, Launcher::kNone);
  EXPECT_EQ(env->world_size, 1);
  EXPECT_THAT(env->note, HasSubstr("not in an srun step"));
}

TEST_F(EnvironmentTest, MalformedValuesAreErrorsNamingTheVariable) {
  Set("OMPI_COMM_WORLD_RANK", "three");
  Set("OMPI_COMM_WORLD_SIZE", "4");
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("OMPI_COMM_WORLD_RANK=\"three\""));

  Set("OMPI_COMM_WORLD_RANK", "4");
  env = DetectEnvironment();
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()),
              HasSubstr("OMPI_COMM_WORLD_RANK=4 is not below OMPI_COMM_WORLD_SIZE=4"));

  Set("OMPI_COMM_WORLD_RANK", "0");
  Set("OMPI_COMM_WORLD_SIZE", "0");
  env = DetectEnvironment();
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("OMPI_COMM_WORLD_SIZE=\"0\""));
}

TEST_F(EnvironmentTest, RankWithoutSizeIsAnError) {
  Set("SLURM_PROCID", "0");
  Set("SLURM_STEP_ID", "0");
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("SLURM_NTASKS is not"));
}

TEST(EnvironmentCheckTest, DisagreementWithMpiSaysHowToLaunch) {
  ProcessEnvironment env;
  env.launcher = Launcher::kSlurm;
  env.rank = 0;
  env.world_size = 4;
  EXPECT_TRUE(CheckEnvironmentMatchesWorld(env, 0, 4).ok());
  absl::Status status = CheckEnvironmentMatchesWorld(env, 0, 1);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("rank 0 of 4 but MPI says rank 0 of 1"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("srun -n N"));
}

TEST(TopologyTest, StageIsRankModStagesAndReplicaIsRankDivStages) {
  // 3 stages x 2 replicas: ranks 0 1 2 are replica 0, ranks 3 4 5 replica 1.
  const int expected_stage[] = {0, 1, 2, 0, 1, 2};
  const int expected_replica[] = {0, 0, 0, 1, 1, 1};
  for (int rank = 0; rank < 6; ++rank) {
    absl::StatusOr<Topology> t = MakeTopology(6, rank, 3, 2);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->stage, expected_stage[rank]) << "rank " << rank;
    EXPECT_EQ(t->replica, expected_replica[rank]) << "rank " << rank;
    EXPECT_EQ(t->RankOf(t->stage, t->replica), rank);
  }
}

TEST(TopologyTest, NeighboursAndGroups) {
  absl::StatusOr<Topology> t = MakeTopology(6, 4, 3, 2);  // stage 1 of replica 1
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->IsFirstStage());
  EXPECT_FALSE(t->IsLastStage());
  EXPECT_EQ(t->PrevStageRank(), 3);
  EXPECT_EQ(t->NextStageRank(), 5);
  EXPECT_EQ(t->PipelineGroupRanks(), (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(t->DataParallelGroupRanks(), (std::vector<int>{1, 4}));
  EXPECT_EQ(t->Identity(), "r4 pp1 dp1");

  absl::StatusOr<Topology> first = MakeTopology(6, 3, 3, 2);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->IsFirstStage());
  EXPECT_EQ(first->PrevStageRank(), -1);
  EXPECT_EQ(first->NextStageRank(), 4);
  absl::StatusOr<Topology> last = MakeTopology(6, 2, 3, 2);
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->IsLastStage());
  EXPECT_EQ(last->NextStageRank(), -1);
  EXPECT_EQ(last->PrevStageRank(), 1);
  EXPECT_EQ(last->Identity(), "r2 pp2 dp0");
}

TEST(TopologyTest, OneProcessIsAOneByOneGrid) {
  absl::StatusOr<Topology> t = MakeTopology(1, 0, 1, 1);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->IsFirstStage());
  EXPECT_TRUE(t->IsLastStage());
  EXPECT_EQ(t->PipelineGroupRanks(), std::vector<int>{0});
  EXPECT_EQ(t->DataParallelGroupRanks(), std::vector<int>{0});
  EXPECT_EQ(t->Identity(), "r0 pp0 dp0");
}

TEST(TopologyTest, WrongWorldSizeSaysSoWithTheNumbersAndTheFix) {
  absl::StatusOr<Topology> t = MakeTopology(4, 0, 3, 1);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(t.status().message()),
            "world size 4 != pipeline.stages 3 x data_parallel 1 = 3: run with mpirun -np 3 "
            "(stages x data_parallel), or set pipeline.stages and data_parallel so that their "
            "product is 4");
}

TEST(TopologyTest, BadArgumentsAreErrors) {
  EXPECT_FALSE(MakeTopology(0, 0, 1, 1).ok());
  EXPECT_FALSE(MakeTopology(4, 4, 2, 2).ok());
  EXPECT_FALSE(MakeTopology(4, -1, 2, 2).ok());
  EXPECT_FALSE(MakeTopology(4, 0, 0, 2).ok());
  EXPECT_FALSE(MakeTopology(4, 0, 4, 0).ok());
  EXPECT_THAT(std::string(MakeTopology(4, 0, 0, 2).status().message()),
              HasSubstr("pipeline.stages must be >= 1, got 0"));
}

}  // namespace
}  // namespace pipetrain
