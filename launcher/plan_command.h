// `pipetrain plan`: before any GPU time is spent, show how a spec would run on
// a cluster shape — the partition, each GPU's memory (weights, gradients,
// AdamW moments, activations under the checkpoint policy), and the step time
// and bubble of the schedule simulated against a FLOP cost model; optionally
// the simulated schedule as a Chrome trace. See docs/plan.md.
#ifndef PIPETRAIN_LAUNCHER_PLAN_COMMAND_H_
#define PIPETRAIN_LAUNCHER_PLAN_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pipetrain {

// `overrides` are the --set assignments; the plan's own flags (--world, --dp,
// --microbatches, --schedule, ...) are applied after them.
absl::Status RunPlanCommand(const std::vector<std::string>& overrides);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_PLAN_COMMAND_H_
