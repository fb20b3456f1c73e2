// `pipetrain train`: reads the flags, resolves the spec and hands it to the
// trainer library (launcher/trainer/training_run.h), the one training loop.
#include "launcher/train_command.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/model_memory.h"
#include "launcher/run_spec_checks.h"
#include "launcher/trainer/training_run.h"

ABSL_FLAG(std::string, spec, "", "Model spec (protobuf text format): model {...} and train {...}");
ABSL_FLAG(std::string, config, "",
          "Optional training-config file (TrainConfig text); replaces the spec's train fields");
ABSL_FLAG(int64_t, steps, -1, "Optimizer steps to run (overrides train.steps)");
ABSL_FLAG(int64_t, seed, -1, "Random seed (overrides train.seed)");
ABSL_FLAG(std::string, metrics, "", "Append one JSON line per logged step to this file");
ABSL_FLAG(std::string, save_params, "",
          "At the end, write every parameter in layer order as raw values of the run's dtype "
          "(one process's flat buffer, whatever the parallel layout) to this file");

namespace pipetrain {

absl::Status RunTrainCommand(const std::vector<std::string>& overrides_in) {
  const std::string spec_path = absl::GetFlag(FLAGS_spec);
  if (spec_path.empty()) {
    return absl::InvalidArgumentError(
        "train needs --spec FILE, e.g. pipetrain train --spec configs/tiny.pbtxt");
  }
  std::vector<std::string> overrides = overrides_in;
  if (absl::GetFlag(FLAGS_steps) >= 0) {
    overrides.push_back(absl::StrCat("train.steps=", absl::GetFlag(FLAGS_steps)));
  }
  if (absl::GetFlag(FLAGS_seed) >= 0) {
    overrides.push_back(absl::StrCat("train.seed=", absl::GetFlag(FLAGS_seed)));
  }
  // Field checks with the norm and placement rules (launcher/run_spec_checks.h).
  PT_ASSIGN_OR_RETURN(RunSpec spec,
                      LoadCheckedRunSpec(spec_path, absl::GetFlag(FLAGS_config), overrides));
  // The resolved spec (file, --config, --set and defaults together), so a log
  // says exactly what ran.
  LogInfo("train", "resolved spec: %s", spec.ShortDebugString());
  // Before the trainer allocates a parameter: a model too large for this
  // host is refused with its size, not aborted by the allocator.
  PT_RETURN_IF_ERROR(CheckModelFitsHostMemory(spec, ModelUse::kTraining));
  return RunTraining(spec, TrainingOutputs{.metrics_path = absl::GetFlag(FLAGS_metrics),
                                           .save_params_path = absl::GetFlag(FLAGS_save_params)});
}

}  // namespace pipetrain
