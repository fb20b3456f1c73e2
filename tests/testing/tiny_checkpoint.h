// One checkpoint of the tiny model, written the way the trainer writes it:
// the start the suites that read checkpoints back share (ckpt_command_test
// runs `pipetrain ckpt` on it, checkpoint_integrity_test damages it).
#ifndef PIPETRAIN_TESTS_TESTING_TINY_CHECKPOINT_H_
#define PIPETRAIN_TESTS_TESTING_TINY_CHECKPOINT_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "core/config/spec_loader.h"
#include "core/status_macros.h"
#include "models/checkpoint.h"
#include "models/transformer_model.h"

namespace pipetrain::testing {

struct TinyCheckpoint {
  RunSpec spec;                             // configs/tiny.pbtxt as loaded
  std::unique_ptr<TransformerModel> model;  // the parameters saved (seed 17)
  std::string step_dir;                     // <run_dir>/step_3
};

// Saves step 3 of configs/tiny.pbtxt's model into `run_dir`, with AdamW
// moments that differ element by element (a shuffled or truncated moment
// would not go unnoticed) and a fixed data cursor and seed.
inline absl::StatusOr<TinyCheckpoint> SaveTinyCheckpoint(const std::string& run_dir) {
  TinyCheckpoint out;
  PT_ASSIGN_OR_RETURN(
      out.spec, LoadRunSpec(std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt", "", {}));
  PT_ASSIGN_OR_RETURN(out.model, TransformerModel::Create(out.spec.model(), DType::kF32, 17));
  const int64_t n = out.model->params().total_elements();
  Tensor m = Tensor::Zeros({n}, DType::kF32), v = Tensor::Zeros({n}, DType::kF32);
  for (int64_t i = 0; i < n; ++i) {
    m.data<float>()[i] = 0.001f * static_cast<float>(i % 101);
    v.data<float>()[i] = 0.0001f * static_cast<float>(i % 53);
  }
  CheckpointInfo ckpt;
  ckpt.step = 3;
  ckpt.spec = out.spec;
  ckpt.data_cursor = "cursor";
  ckpt.rng_seed = 1;
  PT_ASSIGN_OR_RETURN(out.step_dir, SaveParameterStore(run_dir, ckpt, out.model->params(), m, v));
  return out;
}

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_TINY_CHECKPOINT_H_
