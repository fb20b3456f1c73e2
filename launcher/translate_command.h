// `pipetrain translate`: translates stdin to stdout, a line for a line, with
// a checkpoint's model and vocabulary.
//
//   pipetrain translate --ckpt runs/demo --src-lang en --tgt-lang de [--beam 4]
//       [--length-penalty 1.0] [--vocab FILE] < input.txt > output.txt
#ifndef PIPETRAIN_LAUNCHER_TRANSLATE_COMMAND_H_
#define PIPETRAIN_LAUNCHER_TRANSLATE_COMMAND_H_

#include "absl/status/status.h"

namespace pipetrain {

absl::Status RunTranslateCommand();

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRANSLATE_COMMAND_H_
