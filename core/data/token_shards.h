// The tokenized corpus that `pipetrain data shard` writes and the sampler
// reads, memory-mapped. A shard directory holds, for each split:
//
//   SPLIT.tokens   every distinct sentence of the split (per language) once:
//                  header, int64 token offsets [n+1], (dev/test: int64 text
//                  offsets [n+1]), uint16 language index [n], token ids
//                  (uint16 when the vocabulary has at most 65,536 pieces,
//                  else int32), (dev/test: the UTF-8 texts)
//   SPLIT.pairs    for every kept language pair a < b, its distinct
//                  (sentence of a, sentence of b) pairs as uint32 sentence
//                  indices; direction b→a reads the same list flipped:
//                  header, group table, pairs
//   manifest.tsv   format version, vocabulary path/hash/size, the
//                  languages in index order with their target-tag ids, and
//                  (format 2) a last line `crc32c\t0x........` over every
//                  byte before it
//
// Binary files are little-endian with 8-byte aligned sections; each begins
// with a 64-byte header (magic, version, vocabulary size and hash) so a shard
// built with another vocabulary, truncated or overwritten is refused with an
// error that names the file.
#ifndef PIPETRAIN_CORE_DATA_TOKEN_SHARDS_H_
#define PIPETRAIN_CORE_DATA_TOKEN_SHARDS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/data/corpus_builder.h"  // kNumSplits, SplitName
#include "core/data/mapped_file.h"

namespace pipetrain {

inline constexpr uint32_t kShardVersion = 1;
inline constexpr uint32_t kShardByteOrderMark = 0x01020304u;
inline constexpr char kTokenShardMagic[8] = {'P', 'T', 'T', 'O', 'K', 'E', 'N', 'S'};
inline constexpr char kPairShardMagic[8] = {'P', 'T', 'P', 'A', 'I', 'R', 'S', '1'};
inline constexpr char kShardManifestName[] = "manifest.tsv";
// Format 2 manifests end with their own CRC-32C; format 1 (before) is read
// with a warning, since its lines cannot be checked against damage.
inline constexpr uint32_t kShardManifestVersion = 2;

struct TokenShardHeader {
  char magic[8];
  uint32_t version;
  uint32_t byte_order;   // kShardByteOrderMark as the writer stored it
  uint32_t token_bytes;  // 2 or 4
  int32_t vocab_size;
  uint64_t vocab_hash;  // HashFileContents of the vocabulary file
  int64_t sentences;
  int64_t tokens;
  int64_t text_bytes;  // -1 when the texts are not stored
  uint32_t languages;
  uint32_t reserved;
};
static_assert(sizeof(TokenShardHeader) == 64);

struct PairShardHeader {
  char magic[8];
  uint32_t version;
  uint32_t byte_order;
  uint64_t vocab_hash;
  int64_t sentences;  // of the SPLIT.tokens these pairs index
  int64_t tokens;     // idem: a pairs file from another build is refused
  int64_t groups;
  int64_t pairs;
  uint32_t languages;
  uint32_t reserved;
};
static_assert(sizeof(PairShardHeader) == 64);

// One unordered language pair's slice of the pair list.
struct PairGroup {
  uint32_t lang_a, lang_b;  // lang_a < lang_b
  int64_t first, count;     // pairs [first, first + count)
};
static_assert(sizeof(PairGroup) == 24);

// Bytes of each section, rounded up to 8 so the next one stays aligned.
inline int64_t AlignTo8(int64_t n) { return (n + 7) & ~int64_t{7}; }

// FNV-1a 64 of a file's bytes: the identity of the vocabulary a shard was
// built with.
absl::StatusOr<uint64_t> HashFileContents(const std::string& path);
// 16 lowercase hex digits.
std::string HashHex(uint64_t hash);

// One split's sentences.
class TokenShard {
 public:
  // Validates magic, version, byte order, the size against the header, the
  // offsets, language indices and token ids; errors name the file.
  static absl::StatusOr<TokenShard> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const TokenShardHeader& header() const { return header_; }
  int64_t size() const { return header_.sentences; }
  int32_t Language(int64_t sentence) const { return languages_[sentence]; }
  int64_t Length(int64_t sentence) const { return offsets_[sentence + 1] - offsets_[sentence]; }
  // Appends the sentence's ids (no <s>, </s> or tag) to `out`.
  void AppendTokens(int64_t sentence, std::vector<int32_t>* out) const;
  bool has_text() const { return header_.text_bytes >= 0; }
  // The sentence's text; only when has_text().
  std::string_view Text(int64_t sentence) const;

 private:
  TokenShard() = default;

  std::unique_ptr<MappedFile> file_;
  TokenShardHeader header_{};
  const int64_t* offsets_ = nullptr;
  const int64_t* text_offsets_ = nullptr;
  const uint16_t* languages_ = nullptr;
  const uint8_t* tokens_ = nullptr;
  const char* text_ = nullptr;
};

// One split's pairs, grouped by unordered language pair.
class PairShard {
 public:
  // Validates the header against `tokens` (same build) and the group table.
  static absl::StatusOr<PairShard> Open(const std::string& path, const TokenShard& tokens);

  const std::string& path() const { return file_->path(); }
  int64_t total_pairs() const { return header_.pairs; }
  absl::Span<const PairGroup> groups() const { return groups_; }
  // The group of languages {a, b} (either order), or nullptr.
  const PairGroup* FindGroup(int32_t a, int32_t b) const;
  // Pair `i` of `group` as (sentence of lang_a, sentence of lang_b). The
  // sentence indices are checked against `tokens` (range and language), so
  // a corrupt pair list is an error naming the file, not a wild read.
  absl::StatusOr<std::pair<int64_t, int64_t>> Pair(const PairGroup& group, int64_t i,
                                                   const TokenShard& tokens) const;

 private:
  PairShard() = default;

  std::unique_ptr<MappedFile> file_;
  PairShardHeader header_{};
  absl::Span<const PairGroup> groups_;
  const uint32_t* pairs_ = nullptr;
};

struct ShardLanguage {
  std::string code;
  int32_t tag_id = -1;  // the vocabulary's "<2code>" piece
  int64_t line = 0;     // of manifest.tsv, for messages
};

// The text of a format-2 shard manifest: `body` (every line but the last)
// followed by `crc32c\t0x<8 hex digits>\n`, the CRC-32C of `body`.
std::string SealShardManifest(const std::string& body);

// A whole shard directory: manifest plus the three splits.
class CorpusShards {
 public:
  // Reads the manifest and opens every split, checking that all files come
  // from one build (vocabulary hash, language count, tokens ↔ pairs). A
  // format-2 manifest must end with the CRC-32C of its bytes; a format-1
  // one (no CRC) is accepted with a warning on stderr.
  static absl::StatusOr<CorpusShards> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::vector<ShardLanguage>& languages() const { return languages_; }
  // Index of `code` in languages(), or -1.
  int32_t LanguageIndex(const std::string& code) const;
  // The vocabulary file named at build time, its hash and size.
  const std::string& vocab_path() const { return vocab_path_; }
  const std::string& corpus_dir() const { return corpus_dir_; }
  uint64_t vocab_hash() const { return vocab_hash_; }
  int32_t vocab_size() const { return vocab_size_; }
  // OK when the file at `vocab_path` is byte for byte the vocabulary the
  // shards were built with; otherwise an error saying how to rebuild them.
  absl::Status CheckVocabulary(const std::string& vocab_path) const;
  // OK when every language's tag id in the manifest is `tag_id(code)`, the
  // id of the piece "<2code>" in the vocabulary at `vocab_path` (so one
  // flipped digit cannot give French targets the Spanish tag); otherwise an
  // error naming the manifest line, both ids and how to rebuild.
  absl::Status CheckLanguageTags(const std::function<int32_t(const std::string& code)>& tag_id,
                                 const std::string& vocab_path) const;
  // Whether the manifest carried its CRC-32C (format 2).
  bool manifest_sealed() const { return manifest_sealed_; }
  // The `pipetrain data shard` command that rebuilds these shards with the
  // vocabulary at `vocab_path`.
  std::string RebuildCommand(const std::string& vocab_path) const;

  const TokenShard& tokens(int split) const { return *tokens_[split]; }
  const PairShard& pairs(int split) const { return *pairs_[split]; }

 private:
  CorpusShards() = default;

  std::string dir_;
  std::string corpus_dir_;  // the corpus line: what a rebuild reads
  std::string vocab_path_;
  uint64_t vocab_hash_ = 0;
  int32_t vocab_size_ = 0;
  bool manifest_sealed_ = false;
  std::vector<ShardLanguage> languages_;
  // unique_ptr keeps TokenShard addresses fixed for the PairShards.
  std::array<std::unique_ptr<TokenShard>, kNumSplits> tokens_;
  std::array<std::unique_ptr<PairShard>, kNumSplits> pairs_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_TOKEN_SHARDS_H_
