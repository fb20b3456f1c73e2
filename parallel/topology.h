// Topology: who this process is (from the launcher's environment) and where it
// sits in the pipeline × data-parallel grid.
//
// Grid mapping: stage = rank % stages, replica = rank / stages. Neighbouring
// pipeline stages are adjacent ranks, so with the block rank mapping that
// mpirun and srun use by default a pipeline stays on one node as long as it
// fits there; the point-to-point traffic (every micro-batch) then stays on the
// node, and only the gradient all-reduce (once per step) crosses nodes.
#ifndef PIPETRAIN_PARALLEL_TOPOLOGY_H_
#define PIPETRAIN_PARALLEL_TOPOLOGY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace pipetrain {

enum class Launcher { kNone, kOpenMpi, kSlurm };
const char* LauncherName(Launcher launcher);  // "none", "Open MPI", "Slurm"

struct ProcessEnvironment {
  Launcher launcher = Launcher::kNone;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // index among this node's processes: picks the GPU
  // Anything worth telling the user about how the values were chosen (e.g.
  // "inside a Slurm allocation but not an srun step"); empty when plain.
  std::string note;
  // The variables rank and size were read from, as "SLURM_PROCID=1
  // SLURM_STEP_NUM_TASKS=2"; empty without a launcher.
  std::string source;
};

// Reads the launcher's variables: Open MPI (OMPI_COMM_WORLD_RANK/SIZE/
// LOCAL_RANK) first, because mpirun inside a Slurm allocation inherits the
// allocation's SLURM_* variables, which then describe the batch script rather
// than this process. Then a Slurm step (SLURM_PROCID, SLURM_STEP_NUM_TASKS or
// SLURM_NTASKS, SLURM_LOCALID). SLURM_PROCID without SLURM_STEP_ID is the
// batch script itself (one process; srun was not used): that is reported as a
// single process with a note. No launcher: one process, rank 0 of 1.
// A variable that is set but is not a number, or a rank outside the world, is
// an error naming the variable and its value.
absl::StatusOr<ProcessEnvironment> DetectEnvironment();

// Checks that the environment agrees with what MPI reports (rank and size of
// MPI_COMM_WORLD); a disagreement means the processes were not started by the
// launcher whose variables are set (e.g. `pipetrain` run directly inside an
// sbatch script): the error says how to launch instead.
absl::Status CheckEnvironmentMatchesWorld(const ProcessEnvironment& env, int mpi_rank,
                                          int mpi_size);

// This rank's place in the grid of `pipeline_stages` × `data_parallel` ranks.
struct Topology {
  int world_size = 1;
  int rank = 0;
  int pipeline_stages = 1;
  int data_parallel = 1;
  int stage = 0;    // rank % pipeline_stages
  int replica = 0;  // rank / pipeline_stages

  // The world rank at (stage, replica).
  int RankOf(int stage, int replica) const { return replica * pipeline_stages + stage; }
  bool IsFirstStage() const { return stage == 0; }
  bool IsLastStage() const { return stage == pipeline_stages - 1; }
  // World rank of the previous / next stage of this replica; -1 at the ends.
  int PrevStageRank() const;
  int NextStageRank() const;
  // World ranks of my pipeline (my replica, by stage) and of my data-parallel
  // group (my stage, by replica).
  std::vector<int> PipelineGroupRanks() const;
  std::vector<int> DataParallelGroupRanks() const;
  // "r3 pp1 dp0": the prefix of every log line (core/util/log.h).
  std::string Identity() const;
};

// Fails unless world_size == pipeline_stages × data_parallel (all ≥ 1) and
// 0 ≤ rank < world_size; the error gives the numbers and both ways to fix it.
absl::StatusOr<Topology> MakeTopology(int world_size, int rank, int pipeline_stages,
                                      int data_parallel);

// The two sub-communicators of the grid, split from `world` (which must be
// the world the topology was made for). Collective: every rank of `world`
// calls it. Ranks inside `pipeline` are stages, inside `data_parallel` replicas.
struct ProcessGroups {
  std::unique_ptr<Communicator> pipeline;
  std::unique_ptr<Communicator> data_parallel;
};
absl::StatusOr<ProcessGroups> SplitGroups(Communicator& world, const Topology& topology);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_TOPOLOGY_H_
