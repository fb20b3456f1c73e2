#include "parallel/topology.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

const char* GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? value : nullptr;
}

// The value of `name` as an integer ≥ `min`; nullopt when unset.
absl::StatusOr<std::optional<int>> EnvInt(const char* name, int min) {
  const char* text = GetEnv(name);
  if (text == nullptr) return std::optional<int>();
  int value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text), &value) || value < min) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment variable ", name, "=\"", text, "\" is not an integer >= ", min));
  }
  return std::optional<int>(value);
}

// Reads rank/size/local-rank from three variables; `size_names` are tried in
// order. Requires rank and size; local rank defaults to 0.
absl::StatusOr<ProcessEnvironment> ReadLauncher(Launcher launcher, const char* rank_name,
                                                std::initializer_list<const char*> size_names,
                                                const char* local_name) {
  ProcessEnvironment env;
  env.launcher = launcher;
  PT_ASSIGN_OR_RETURN(std::optional<int> rank, EnvInt(rank_name, 0));
  std::optional<int> size;
  std::string size_name;
  for (const char* name : size_names) {
    PT_ASSIGN_OR_RETURN(size, EnvInt(name, 1));
    size_name = name;
    if (size.has_value()) break;
  }
  if (!size.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(rank_name, " is set but ", size_name,
                                                   " is not: cannot tell the world size under ",
                                                   LauncherName(launcher)));
  }
  if (*rank >= *size) {
    return absl::InvalidArgumentError(
        absl::StrCat(rank_name, "=", *rank, " is not below ", size_name, "=", *size));
  }
  PT_ASSIGN_OR_RETURN(std::optional<int> local, EnvInt(local_name, 0));
  env.rank = *rank;
  env.world_size = *size;
  env.local_rank = local.value_or(0);
  env.source = absl::StrCat(rank_name, "=", *rank, " ", size_name, "=", *size);
  return env;
}

}  // namespace

const char* LauncherName(Launcher launcher) {
  switch (launcher) {
    case Launcher::kNone:
      return "none";
    case Launcher::kOpenMpi:
      return "Open MPI";
    case Launcher::kSlurm:
      return "Slurm";
  }
  return "?";
}

absl::StatusOr<ProcessEnvironment> DetectEnvironment() {
  if (GetEnv("OMPI_COMM_WORLD_RANK") != nullptr || GetEnv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    return ReadLauncher(Launcher::kOpenMpi, "OMPI_COMM_WORLD_RANK", {"OMPI_COMM_WORLD_SIZE"},
                        "OMPI_COMM_WORLD_LOCAL_RANK");
  }
  if (GetEnv("SLURM_PROCID") != nullptr) {
    if (GetEnv("SLURM_STEP_ID") == nullptr && GetEnv("SLURM_STEPID") == nullptr) {
      // The batch script's own shell: SLURM_NTASKS describes the allocation,
      // not this process, which is alone.
      ProcessEnvironment env;
      env.note =
          "inside a Slurm allocation but not in an srun step: running as one process "
          "(start the ranks with srun or mpirun to use the allocation)";
      return env;
    }
    // SLURM_STEP_NUM_TASKS is this step's size; SLURM_NTASKS the allocation's,
    // which is the same unless the step asked for fewer tasks.
    return ReadLauncher(Launcher::kSlurm, "SLURM_PROCID", {"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"},
                        "SLURM_LOCALID");
  }
  return ProcessEnvironment();
}

absl::Status CheckEnvironmentMatchesWorld(const ProcessEnvironment& env, int mpi_rank,
                                          int mpi_size) {
  if (env.rank == mpi_rank && env.world_size == mpi_size) return absl::OkStatus();
  const std::string how =
      env.launcher == Launcher::kSlurm
          ? " (under srun, MPI must be reached through the right plugin: srun --mpi=pmix, see "
            "srun --mpi=list)"
          : "";
  return absl::FailedPreconditionError(absl::StrCat(
      "the launcher (", LauncherName(env.launcher), ": ", env.source, ") says this is rank ",
      env.rank, " of ", env.world_size, " but MPI says rank ", mpi_rank, " of ", mpi_size,
      ": start every rank with the same launcher (mpirun -np N ... or srun -n N ...), not the "
      "binary directly",
      how));
}

int Topology::PrevStageRank() const { return IsFirstStage() ? -1 : RankOf(stage - 1, replica); }

int Topology::NextStageRank() const { return IsLastStage() ? -1 : RankOf(stage + 1, replica); }

std::vector<int> Topology::PipelineGroupRanks() const {
  std::vector<int> ranks;
  for (int s = 0; s < pipeline_stages; ++s) ranks.push_back(RankOf(s, replica));
  return ranks;
}

std::vector<int> Topology::DataParallelGroupRanks() const {
  std::vector<int> ranks;
  for (int d = 0; d < data_parallel; ++d) ranks.push_back(RankOf(stage, d));
  return ranks;
}

std::string Topology::Identity() const {
  return absl::StrCat("r", rank, " pp", stage, " dp", replica);
}

absl::StatusOr<Topology> MakeTopology(int world_size, int rank, int pipeline_stages,
                                      int data_parallel) {
  PT_CHECK_ARG(world_size >= 1, "world size must be >= 1, got ", world_size);
  PT_CHECK_ARG(rank >= 0 && rank < world_size, "rank ", rank, " is outside the world of ",
               world_size, " ranks");
  PT_CHECK_ARG(pipeline_stages >= 1, "pipeline.stages must be >= 1, got ", pipeline_stages);
  PT_CHECK_ARG(data_parallel >= 1, "data_parallel must be >= 1, got ", data_parallel);
  if (static_cast<int64_t>(pipeline_stages) * data_parallel != world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "world size ", world_size, " != pipeline.stages ", pipeline_stages, " x data_parallel ",
        data_parallel, " = ", static_cast<int64_t>(pipeline_stages) * data_parallel,
        ": run with mpirun -np ", static_cast<int64_t>(pipeline_stages) * data_parallel,
        " (stages x data_parallel), or set pipeline.stages and data_parallel so that their "
        "product is ",
        world_size));
  }
  Topology topology;
  topology.world_size = world_size;
  topology.rank = rank;
  topology.pipeline_stages = pipeline_stages;
  topology.data_parallel = data_parallel;
  topology.stage = rank % pipeline_stages;
  topology.replica = rank / pipeline_stages;
  return topology;
}

absl::StatusOr<ProcessGroups> SplitGroups(Communicator& world, const Topology& topology) {
  // The same on every rank (one configuration), so an early return here
  // cannot leave some ranks waiting in the splits below.
  PT_CHECK_ARG(world.size() == topology.world_size && world.rank() == topology.rank,
               "SplitGroups: the communicator is rank ", world.rank(), " of ", world.size(),
               " but the topology is for rank ", topology.rank, " of ", topology.world_size);
  ProcessGroups groups;
  PT_ASSIGN_OR_RETURN(groups.pipeline, world.Split(topology.replica, topology.stage));
  PT_ASSIGN_OR_RETURN(groups.data_parallel, world.Split(topology.stage, topology.replica));
  return groups;
}

}  // namespace pipetrain
