// A trained model for translation: the parameters of a checkpoint and the
// vocabulary it was trained with, as `pipetrain translate` and `pipetrain
// eval` load them.
#ifndef PIPETRAIN_LAUNCHER_INFERENCE_MODEL_H_
#define PIPETRAIN_LAUNCHER_INFERENCE_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/data/sentencepiece_model.h"
#include "models/transformer_model.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

struct InferenceModel {
  RunSpec spec;  // as the checkpoint recorded it
  int64_t step = 0;
  std::string checkpoint_dir;  // the step directory read
  std::unique_ptr<TransformerModel> model;
  std::unique_ptr<SentencePieceModel> vocab;
  std::string vocab_path;
};

// `ckpt` is a run directory (its latest checkpoint is used) or a step
// directory. The vocabulary is `vocab_path` when given, else the run
// directory's spm.model (the trainer copies it there), else the one of the
// corpus the spec names; the error lists what was tried.
absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& ckpt,
                                                  const std::string& vocab_path);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_INFERENCE_MODEL_H_
