// Runs a schedule's action lists against a cost model, as the ranks would run
// them, and reports the step time, each rank's bubble and its peak live
// activations; names the blocked actions when the lists deadlock.
//
// Model (docs/pipeline-schedules.md):
//   - each rank runs its list in order, one action at a time;
//   - F, B and W take their compute cost; a SEND takes `send` on the sender
//     and never blocks (the executor posts it non-blocking), and its message
//     can be received `latency` later; a RECV waits for that message, then
//     takes `recv`;
//   - the step ends when the last rank finishes (the optimizer waits for all).
// Bubble fraction of a rank = (step time − its F/B/W time) / step time, so time
// spent waiting or communicating is bubble.
// A micro-batch's activation on a chunk is live from the start of its F to the
// end of its B (B releases what only the input gradient needs). What W still
// reads (the layer inputs and output gradients) is counted apart, from the end
// of B to the end of W, as a pending weight gradient: W right after B makes
// that at most 1, zero-bubble schedules trade it for a smaller bubble.
#ifndef PIPETRAIN_PARALLEL_SCHEDULE_SIMULATOR_H_
#define PIPETRAIN_PARALLEL_SCHEDULE_SIMULATOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "parallel/schedule.h"

namespace pipetrain {

// Time of one action on one chunk (any unit: the results are in the same unit).
struct ComputeCosts {
  double forward = 1.0;
  double backward = 1.0;  // input gradient
  double weight = 1.0;    // weight gradient
};

struct SimulationCosts {
  ComputeCosts compute;  // every virtual stage, unless per_virtual_stage is set
  // Empty, or one entry per virtual stage (e.g. from the partition's stage costs).
  std::vector<ComputeCosts> per_virtual_stage;
  double send = 0.0;
  double recv = 0.0;
  double latency = 0.0;
};

struct TimedAction {
  Action action;
  double start = 0.0;
  double end = 0.0;
};

struct RankSimulation {
  std::vector<TimedAction> timeline;  // the rank's actions with their times
  double compute_time = 0.0;          // F + B + W
  double comm_time = 0.0;             // SEND + RECV busy time
  double finish_time = 0.0;           // end of its last action
  double bubble_fraction = 0.0;       // (step time − compute time) / step time
  int peak_live_activations = 0;      // max micro-batch×chunk between F start and B end
  int peak_pending_weight_grads = 0;  // max between B end and W end
};

struct SimulationResult {
  double step_time = 0.0;
  double bubble_fraction = 0.0;  // mean over ranks
  std::vector<RankSimulation> ranks;
};

// Validates the schedule first (returns ValidateSchedule's error). Costs must
// be finite and >= 0. A deadlock is FailedPrecondition naming, for every rank
// that cannot finish, the action it is blocked at and what it waits for, and
// the cycle of ranks waiting on each other.
absl::StatusOr<SimulationResult> SimulateSchedule(const Schedule& schedule,
                                                  const SimulationCosts& costs = {});

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_SCHEDULE_SIMULATOR_H_
