// Turns sentence pairs of token ids into padded Batch tensors, laid out for
// the model kind (see core/data/batch.h).
#ifndef PIPETRAIN_CORE_DATA_COLLATE_H_
#define PIPETRAIN_CORE_DATA_COLLATE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/data/batch.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

struct SentencePair {
  std::vector<int32_t> src;  // content ids, no <s> or </s>
  std::vector<int32_t> tgt;
};

// Source and target tokens a pair costs in a batch of `kind`, special tokens included.
int64_t PairTokens(ModelKind kind, const SentencePair& pair);

// Pads to the longest sequence among `pairs`. Encoder-only needs equal source
// and target lengths (one label per position).
absl::StatusOr<Batch> Collate(ModelKind kind, absl::Span<const SentencePair> pairs);

// Splits `pairs` into `microbatches` consecutive groups whose sizes differ by at
// most one, and collates each. Needs at least one pair per micro-batch.
absl::StatusOr<std::vector<Batch>> CollateMicrobatches(ModelKind kind,
                                                       absl::Span<const SentencePair> pairs,
                                                       int microbatches);

// Every token id and label of `batch` (host tensors) is inside [0, vocab),
// and every length inside [1, its sequence's length]. Called once per batch
// when it is built, so the ops on a device need not read ids or lengths back
// to check them; the error names the tensor, the position and the value.
absl::Status CheckBatchIds(const Batch& batch, int64_t vocab);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_COLLATE_H_
