// What a layer needs to know about the step it is computing: the training
// step (for BranchNorm's schedule and dropout keys), the micro-batch (dropout
// keys), and whether dropout is on.
#ifndef PIPETRAIN_MODELS_STEP_CONTEXT_H_
#define PIPETRAIN_MODELS_STEP_CONTEXT_H_

#include <cstdint>

#include "core/philox.h"

namespace pipetrain {

struct StepContext {
  uint64_t seed = 0;
  int64_t step = 0;  // optimizer step being computed, 0-based
  int microbatch = 0;
  bool training = true;  // false: no dropout (evaluation, decoding)

  // The dropout stream of `site` in global layer `layer`.
  RngKey Key(int layer, int site) const {
    return RngKey{.seed = seed,
                  .step = static_cast<uint32_t>(step),
                  .layer = static_cast<uint32_t>(layer),
                  .microbatch = static_cast<uint32_t>(microbatch),
                  .site = static_cast<uint32_t>(site)};
  }
};

// Dropout sites within one layer; each has its own stream.
enum DropoutSite : int {
  kSiteEmbedding = 1,
  kSiteSelfAttnProbs = 2,
  kSiteSelfAttnOut = 3,
  kSiteCrossAttnProbs = 4,
  kSiteCrossAttnOut = 5,
  kSiteFfnActivation = 6,
  kSiteFfnOut = 7,
  kSiteDecoderEmbedding = 8,
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_STEP_CONTEXT_H_
