// The trainer's source of real data: draws sentence pairs from the shards of
// a many-to-many corpus (core/data/token_shards.h) and hands out one
// optimizer step's pairs at a time.
//
//   directions  p(src→tgt) ∝ train_pairs^(1/T) (DirectionSampler); a pair is
//               then drawn uniformly within the direction, and the target
//               language's tag id ("<2tgt>") is put in front of the source.
//   length      pairs with more than max_len tokens on a side (the tag
//               counted) are skipped and counted.
//   batches     a pool of about `pool_batches` batches' worth of pairs is
//               drawn, sorted by length, cut into batches whose padded size
//               stays within max_tokens, and the batches are shuffled.
//   order       everything is a pure function of (shards, options, seed):
//               Philox streams keyed by (seed, pool), so every rank that opens
//               the same shards draws the same batches, and a cursor
//               (pool, batch) resumes the stream bit for bit.
#ifndef PIPETRAIN_CORE_DATA_MULTILINGUAL_LOADER_H_
#define PIPETRAIN_CORE_DATA_MULTILINGUAL_LOADER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/collate.h"
#include "core/data/direction_sampler.h"
#include "core/data/loader_cursor.h"
#include "core/data/token_shards.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

struct LoaderOptions {
  double temperature = 5;  // p ∝ n^(1/T); > 0
  // Padded tokens per step: pairs × the cost of the batch's longest source
  // and target (PairTokens of collate.h, so <s> and </s> included).
  int64_t max_tokens = 4096;
  // Most tokens on either side of a pair as SentencePair holds it: source
  // with its tag, target without <s>/</s>. Longer pairs are skipped.
  int32_t max_len = 256;
  // Fewest pairs in a step (micro-batches × data-parallel replicas): any
  // `min_pairs` pairs of max_len must fit max_tokens, which Open checks.
  int32_t min_pairs = 1;
  uint64_t seed = 1;
  // Batches' worth of tokens drawn, sorted and cut at once. Larger pools
  // bucket lengths more tightly; each costs one sort.
  int32_t pool_batches = 200;
  ModelKind kind = ENCODER_DECODER;  // how a pair's tokens are counted
  // Languages to sample among (codes of the shard manifest); empty: all.
  std::vector<std::string> languages;
  // When set, the vocabulary file must be the one the shards were built
  // with (compared by content hash).
  std::string vocab_path;
  // When set (with vocab_path), the id of the piece "<2code>" in that
  // vocabulary: every language's tag id in the shard manifest must equal it
  // (CorpusShards::CheckLanguageTags). Used only while Open runs.
  std::function<int32_t(const std::string& code)> language_tag_id;
};

// One direction among the loader's languages.
struct LoaderDirection {
  std::string src, tgt;
  int32_t src_language = 0, tgt_language = 0;  // indices into the shard languages
  std::array<int64_t, kNumSplits> pairs{};     // distinct pairs: train, dev, test
  double probability = 0;                      // of being drawn for training
};

struct LoaderStats {
  int64_t drawn = 0;          // pairs drawn for training (kept and skipped)
  int64_t too_long = 0;       // skipped: a side over max_len
  int64_t tail_dropped = 0;   // pairs of a pool's last batch when it had < min_pairs
  int64_t pools = 0;          // pools built (a Seek builds one too)
  int64_t batches = 0;        // returned by NextStepPairs
  int64_t padded_tokens = 0;  // sum of the returned batches' padded sizes
  int64_t real_tokens = 0;    // sum of PairTokens over the returned pairs
};

// A held-out pair with its texts, for validation loss and BLEU/chrF.
struct EvalPair {
  std::string src_text, tgt_text;  // the corpus texts (the reference is tgt_text)
  SentencePair ids;                // src begins with the target-language tag
};

// The padded token count of a batch of `pairs` pairs whose longest source
// has `max_src` ids, longest target `max_tgt`, longest source+target
// `max_sum` (decoder-only models pad the concatenation).
int64_t PaddedBatchTokens(ModelKind kind, int64_t pairs, int64_t max_src, int64_t max_tgt,
                          int64_t max_sum);

class MultilingualLoader {
 public:
  // Opens the shard directory written by `pipetrain data shard` and checks
  // the options. Errors name the shard file, the language or the option.
  static absl::StatusOr<std::unique_ptr<MultilingualLoader>> Open(const std::string& shard_dir,
                                                                  const LoaderOptions& options);

  // One optimizer step's pairs (at least min_pairs, padded size within
  // max_tokens), sorted by length within the step.
  absl::StatusOr<std::vector<SentencePair>> NextStepPairs();

  // The position after the last step returned, and going back to one.
  LoaderCursor cursor() const;
  absl::Status Seek(const LoaderCursor& cursor);

  // The first `k` pairs of src→tgt in `split` (0 train, 1 dev, 2 test) that
  // fit max_len, in the shard's fixed order. Texts are stored for dev and
  // test only (empty for train).
  absl::StatusOr<std::vector<EvalPair>> DevPairs(const std::string& src, const std::string& tgt,
                                                 int split, int64_t k) const;

  // The loader's languages (shard order) and every direction between two of
  // them that has a pair in some split, sorted by (src, tgt).
  const std::vector<std::string>& languages() const { return languages_; }
  const std::vector<LoaderDirection>& directions() const { return directions_; }
  // The tag id put before sources translated into `code`, or -1.
  int32_t TagId(const std::string& code) const;
  const LoaderStats& stats() const { return stats_; }
  const LoaderOptions& options() const { return options_; }
  const CorpusShards& shards() const { return shards_; }

 private:
  // A drawn pair, before its ids are copied out.
  struct Drawn {
    int64_t src_sentence, tgt_sentence;
    int32_t tag;
    int32_t src_len, tgt_len;  // src_len counts the tag
  };

  MultilingualLoader(CorpusShards shards, LoaderOptions options)
      : shards_(std::move(shards)), options_(std::move(options)) {}
  absl::Status BuildPool(int64_t pool);
  uint64_t Fingerprint() const;

  CorpusShards shards_;
  LoaderOptions options_;
  std::vector<std::string> languages_;
  std::vector<LoaderDirection> directions_;
  std::vector<int64_t> train_directions_;  // index into directions_ of each sampler entry
  std::unique_ptr<DirectionSampler> sampler_;
  uint64_t check_ = 0;

  int64_t pool_ = -1;  // the pool in batches_; -1 before the first
  int64_t next_batch_ = 0;
  int64_t steps_ = 0;
  std::vector<std::vector<Drawn>> batches_;
  LoaderStats stats_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_MULTILINGUAL_LOADER_H_
