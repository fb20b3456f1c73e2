// One (micro-)batch of token ids, right-padded with id 0.
//
//   encoder-decoder: src_* feed the encoder, tgt_in the decoder (starting with
//                    <s>), labels are the next tokens (ending with </s>).
//   decoder-only:    tgt_in holds source, <s>, target; labels are 0 (ignored)
//                    over the source part.
//   encoder-only:    src_* feed the encoder; labels align with src_ids.
#ifndef PIPETRAIN_CORE_DATA_BATCH_H_
#define PIPETRAIN_CORE_DATA_BATCH_H_

#include <cstdint>

#include "core/tensor.h"

namespace pipetrain {

inline constexpr int32_t kPadId = 0;
inline constexpr int32_t kBosId = 1;
inline constexpr int32_t kEosId = 2;
inline constexpr int32_t kUnkId = 3;
inline constexpr int32_t kFirstContentId = 4;

struct Batch {
  Tensor src_ids;      // i32 [B, Ts]
  Tensor src_lengths;  // i32 [B]
  Tensor tgt_in;       // i32 [B, Tt]
  Tensor tgt_lengths;  // i32 [B]
  Tensor labels;       // i32 [B, Tt] (or [B, Ts] for encoder-only); 0 = ignored

  // Label positions that count towards the loss.
  int64_t LabelTokens() const {
    int64_t n = 0;
    for (int64_t i = 0; i < labels.numel(); ++i) n += labels.data<int32_t>()[i] != kPadId;
    return n;
  }
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_BATCH_H_
