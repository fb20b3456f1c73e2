// `pipetrain train`: resolve the spec, build the model, run the steps,
// print progress and a final digest.
#ifndef PIPETRAIN_LAUNCHER_TRAIN_COMMAND_H_
#define PIPETRAIN_LAUNCHER_TRAIN_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pipetrain {

absl::Status RunTrainCommand(const std::vector<std::string>& overrides);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAIN_COMMAND_H_
