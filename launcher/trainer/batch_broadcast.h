// A replica's micro-batches, sent from the pipeline stage that draws them to
// the other stages of its pipeline. Only stage 0 opens the training data
// (it embeds the source, so it needs token ids anyway); the other stages
// receive ids, labels and lengths from it each step, which costs four bytes
// a token against d_model activations a token, and spares 7 of 8 ranks of
// an 8-stage job the shard index and its memory.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_BATCH_BROADCAST_H_
#define PIPETRAIN_LAUNCHER_TRAINER_BATCH_BROADCAST_H_

#include <vector>

#include "absl/status/status.h"
#include "core/data/batch.h"
#include "launcher/trainer/trainer.h"
#include "parallel/communicator.h"

namespace pipetrain {

// Collective over `pipeline` (host memory): the rank `root` sends its
// `microbatches` host batches and the step's counts (tokens and sentences of
// `counts`); every other rank replaces `batches` and those counts with them.
// Two broadcasts: a header of shapes and counts, then every id in one block.
absl::Status BroadcastStepBatches(Communicator& pipeline, int root, int microbatches,
                                  std::vector<Batch>* batches, StepMetrics* counts);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_BATCH_BROADCAST_H_
