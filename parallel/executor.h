// The executor: runs one rank's action list for one step against a
// PipelineStage, moving boundary tensors with the pipeline communicator.
// Sends are non-blocking and complete at the end of the step; a receive is
// posted when its action comes and waited for just before the computation
// that needs it — with a validated schedule this cannot deadlock.
#ifndef PIPETRAIN_PARALLEL_EXECUTOR_H_
#define PIPETRAIN_PARALLEL_EXECUTOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "parallel/action.h"
#include "parallel/communicator.h"
#include "parallel/pipeline_stage.h"

namespace pipetrain {

struct ExecutorStats {
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
};

// `pipeline` is this replica's pipeline group (its rank = this rank's stage).
// `chunks` is the number of chunks per rank (1 unless interleaved).
absl::StatusOr<ExecutorStats> ExecuteActions(const std::vector<Action>& actions,
                                             PipelineStage& stage, Communicator& pipeline,
                                             int chunks);

// The MPI tag of one boundary tensor: unique per (micro-batch, boundary,
// direction, tensor) among the messages two ranks have in flight in a step.
// `boundary` b is the edge between virtual stages b and b+1.
int BoundaryTag(int microbatch, int boundary, bool backward, int tensor, int virtual_stages);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_EXECUTOR_H_
