// Encodes a multi-way corpus (the directory `pipetrain data build` writes)
// with a vocabulary into the binary shards of core/data/token_shards.h.
// Each distinct sentence of a split is encoded once; a language pair's
// distinct sentence pairs are listed once for both of its directions.
#ifndef PIPETRAIN_CORE_DATA_TOKEN_SHARD_WRITER_H_
#define PIPETRAIN_CORE_DATA_TOKEN_SHARD_WRITER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/corpus_builder.h"  // kNumSplits

namespace pipetrain {

// What the writer needs of a vocabulary. The launcher fills it from a
// SentencePieceModel; tests from a fake. `encode` is called from several
// threads at once and must be safe for that.
struct ShardVocabulary {
  std::string path;   // named in the manifest and in errors
  uint64_t hash = 0;  // HashFileContents(path)
  int32_t vocab_size = 0;
  std::function<std::vector<int32_t>(const std::string& utf8)> encode;
  // The id of the target-language tag piece of `language` ("<2xx>"), or -1
  // when the vocabulary has none.
  std::function<int32_t(const std::string& language)> language_tag_id;
};

struct ShardOptions {
  // Languages to keep, as languages.txt names them; empty keeps all.
  std::vector<std::string> languages;
  // Encoding threads; 0 uses every core.
  int threads = 0;
  // Progress lines (sentences/s, ETA) on stderr.
  bool progress = true;
};

struct ShardSummary {
  int64_t languages = 0;
  int64_t directions = 0;  // ordered: de→fr and fr→de count twice
  std::array<int64_t, kNumSplits> sentences{};
  std::array<int64_t, kNumSplits> tokens{};
  // Distinct pairs summed over the kept directions (both orientations), as
  // directions.tsv counts them.
  std::array<int64_t, kNumSplits> pairs{};
  int64_t bytes = 0;  // written, all files
  double seconds = 0;
  std::vector<std::string> dropped_languages;  // kept by name but left with no direction
};

// Reads CORPUS/{languages.txt, directions.tsv, SPLIT.messages.tsv} and writes
// out_dir/{SPLIT.tokens, SPLIT.pairs, manifest.tsv} (each to NAME.tmp, then
// renamed; the manifest last, so a directory with a manifest is complete).
// Errors: an unknown language, a language without a tag piece (naming the
// language and the vocabulary file), ids outside the vocabulary, I/O.
absl::StatusOr<ShardSummary> WriteCorpusShards(const std::string& corpus_dir,
                                               const ShardVocabulary& vocab,
                                               const ShardOptions& options,
                                               const std::string& out_dir);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_TOKEN_SHARD_WRITER_H_
