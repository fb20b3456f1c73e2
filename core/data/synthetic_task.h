// The built-in synthetic task: random token sequences and a deterministic
// transformation of them (reverse or copy). It lets `pipetrain train` run
// with no corpus at all, and its data is a pure function of (seed, step), so
// every rank of a pipeline can draw the same batch without communicating.
#ifndef PIPETRAIN_CORE_DATA_SYNTHETIC_TASK_H_
#define PIPETRAIN_CORE_DATA_SYNTHETIC_TASK_H_

#include <cstdint>
#include <vector>

#include "core/data/collate.h"
#include "proto/model_spec.pb.h"
#include "proto/train_config.pb.h"

namespace pipetrain {

// Sentence `index` of `step`: length in [min_length, max_length], content ids
// from the first `alphabet` ids after the specials.
SentencePair SyntheticPair(const SyntheticData& task, int32_t vocab_size, uint64_t seed,
                           int64_t step, int64_t index);

// The pairs of one optimizer step: drawn in index order until the next one
// would overflow `tokens_per_batch` (at least `min_pairs` are always taken).
std::vector<SentencePair> SyntheticStepPairs(const ModelSpec& model, const TrainConfig& train,
                                             int64_t step, int min_pairs);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_SYNTHETIC_TASK_H_
