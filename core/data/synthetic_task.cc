#include "core/data/synthetic_task.h"

#include <algorithm>

#include "core/philox.h"

namespace pipetrain {
namespace {

// Keeps data streams apart from dropout streams, which use small layer numbers.
constexpr uint32_t kDataStream = 0xDA7A0000u;

}  // namespace

SentencePair SyntheticPair(const SyntheticData& task, int32_t vocab_size, uint64_t seed,
                           int64_t step, int64_t index) {
  PhiloxStream stream(RngKey{.seed = seed,
                             .step = static_cast<uint32_t>(step),
                             .layer = kDataStream ^ static_cast<uint32_t>(index >> 20),
                             .microbatch = static_cast<uint32_t>(index & 0xFFFFF)});
  const int min_len = std::max(task.min_length(), 1);
  const int max_len = std::max(task.max_length(), min_len);
  const int32_t content = vocab_size - kFirstContentId;
  const int32_t alphabet = task.alphabet() > 0 ? std::min(task.alphabet(), content) : content;
  SentencePair pair;
  const int length = min_len + static_cast<int>(stream.Bits(0) % (max_len - min_len + 1));
  pair.src.resize(length);
  for (int i = 0; i < length; ++i) {
    pair.src[i] = kFirstContentId + static_cast<int32_t>(stream.Bits(1 + i) % alphabet);
  }
  pair.tgt = pair.src;
  if (task.task() != COPY) std::reverse(pair.tgt.begin(), pair.tgt.end());
  return pair;
}

std::vector<SentencePair> SyntheticStepPairs(const ModelSpec& model, const TrainConfig& train,
                                             int64_t step, int min_pairs) {
  std::vector<SentencePair> pairs;
  int64_t tokens = 0;
  for (int64_t index = 0;; ++index) {
    SentencePair pair =
        SyntheticPair(train.synthetic(), model.vocab_size(), train.seed(), step, index);
    const int64_t cost = PairTokens(model.kind(), pair);
    if (static_cast<int64_t>(pairs.size()) >= min_pairs &&
        tokens + cost > train.tokens_per_batch()) {
      break;
    }
    tokens += cost;
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

}  // namespace pipetrain
