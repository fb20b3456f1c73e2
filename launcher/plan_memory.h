// The memory side of `pipetrain plan`: how many parameters a pipeline stage
// allocates, and how many activation bytes one micro-batch keeps on it, counted
// from what models/ actually stores (the *Saved structs of
// models/{residual_join,attention_block,ffn_block,transformer_layer,model_stage}.h).
// The formulas are written out in docs/plan.md; keep the two in step.
#ifndef PIPETRAIN_LAUNCHER_PLAN_MEMORY_H_
#define PIPETRAIN_LAUNCHER_PLAN_MEMORY_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "parallel/action.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

struct StageParameterCount {
  int64_t total = 0;       // every parameter the stage allocates (as ModelStage::Create)
  int64_t embedding = 0;   // of which its copy of the shared embedding (0 when it has none)
  int embedding_uses = 0;  // source / target / tied-output uses here: one partial
                           // gradient buffer of the embedding's size each
};

// The parameters of the stage holding global layers [first, last) of `model`
// (validated, defaults applied), counted as models/ registers them.
absl::StatusOr<StageParameterCount> CountStageParameters(const ModelSpec& model, int first,
                                                         int last);

// The sizes activations are counted with.
struct ActivationShape {
  int64_t sequences = 1;         // per micro-batch
  int64_t source_length = 0;     // tokens per sequence, encoder side
  int64_t target_length = 0;     // tokens per sequence, decoder side
  int64_t activation_bytes = 2;  // per element of a saved activation (bf16 = 2)
};
// LayerNorm statistics, logits and their gradient are counted in fp32.
inline constexpr int64_t kFp32Bytes = 4;

// Bytes one micro-batch holds on a stage. The model frees a micro-batch's
// saved state only at the end of its weight-gradient pass (W), so `saved` is
// held from the start of its F to the end of its W, and `backward` from the
// start of its B to the end of its W.
struct StageActivationBytes {
  int64_t saved = 0;     // forward: each layer's saved tensors (only its input when
                         // recomputed), the encoder output, the head's logits
  int64_t backward = 0;  // what B records for W (output gradients of every GEMM and
                         // LN), d_logits, and the rebuilt activations of recomputed layers
};

// `recompute` has one flag per layer of [first, last), or is empty (none).
absl::StatusOr<StageActivationBytes> CountStageActivations(const ModelSpec& model, int first,
                                                           int last,
                                                           const std::vector<bool>& recompute,
                                                           const ActivationShape& shape);

// The most activation bytes a rank holds at once while running `actions` in
// order, chunk c of the rank holding per_chunk[c] per micro-batch.
int64_t PeakActivationBytes(const std::vector<Action>& actions,
                            const std::vector<StageActivationBytes>& per_chunk);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_PLAN_MEMORY_H_
