// `pipetrain eval`: BLEU and chrF per direction on a corpus split, with a
// checkpoint's model.
//
//   pipetrain eval --ckpt runs/demo [--directions en-de,de-fr] [--split dev|test]
//       [--sentences 200] [--beam 4] [--corpus DIR]
#ifndef PIPETRAIN_LAUNCHER_EVAL_COMMAND_H_
#define PIPETRAIN_LAUNCHER_EVAL_COMMAND_H_

#include "absl/status/status.h"

namespace pipetrain {

absl::Status RunEvalCommand();

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_EVAL_COMMAND_H_
