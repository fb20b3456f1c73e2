// A training run from a resolved spec to train.steps: whatever the
// placement, the same steps. It opens the ranks' communicator (MPI under a
// launcher, none for one process), decides once whether to resume from
// train.output_dir, prepares the corpus (rank 0), builds the Trainer, and
// loops: log with rate and ETA, metrics lines (JSON and TensorBoard),
// checkpoint every checkpoint_interval, validate every eval_interval, stop
// cleanly on a preemption signal. Prints `final: step=N loss=X
// params_digest=HEX` at the end.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_TRAINING_RUN_H_
#define PIPETRAIN_LAUNCHER_TRAINER_TRAINING_RUN_H_

#include <string>

#include "absl/status/status.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

struct TrainingOutputs {
  // Where metrics lines go: this file, else OUTPUT_DIR/metrics.jsonl for a
  // run that keeps an output directory (a corpus or checkpoints), else none.
  std::string metrics_path;
  // At the end, every parameter in layer order as raw values (one process's
  // flat buffer, whatever the placement); none when empty.
  std::string save_params_path;
};

absl::Status RunTraining(const RunSpec& spec, const TrainingOutputs& outputs);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_TRAINING_RUN_H_
