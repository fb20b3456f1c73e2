// Whether a checkpoint holds what a spec's model needs: every parameter the
// model registers, with its shape, each with AdamW moments when the
// checkpoint has any, and nothing else. Per-file and per-tensor CRCs say the
// bytes are the ones written; this says they are all there. A manifest with
// every tensor entry deleted has intact CRCs and "0 tensors", and fails here.
#ifndef PIPETRAIN_MODELS_CHECKPOINT_SPEC_H_
#define PIPETRAIN_MODELS_CHECKPOINT_SPEC_H_

#include <string>
#include <vector>

#include "models/checkpoint.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

// One line per problem, each naming the tensor (empty when the checkpoint
// fits). `source` names where `model` came from ("the spec in
// .../manifest.pb", "configs/tiny.pbtxt") for the lines that blame the spec.
// The model is built one layer at a time, after its sizes are bounded by the
// checkpoint's bytes, so a huge or crafted spec never allocates more than
// about one layer the checkpoint could hold.
std::vector<std::string> CheckpointSpecProblems(const CheckpointReader& reader,
                                                const ModelSpec& model, const std::string& source);

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_CHECKPOINT_SPEC_H_
