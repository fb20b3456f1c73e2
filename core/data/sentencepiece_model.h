// pipetrain's own reader, encoder and decoder of a SentencePiece unigram
// model (the `.model` file `spm_train` writes; `pipetrain data vocab` makes
// one). It produces the ids `spm_encode --output_format=id` produces, and
// decodes as `spm_decode` does, without linking libsentencepiece (whose
// bundled protobuf cannot share a process with ours).
//
// Encoding, as in SentencePiece 0.1.97:
//   1. normalize: user-defined symbols are kept as they are; other text goes
//      through the model's precompiled charsmap when it has one (nmt_nfkc);
//      invalid UTF-8 becomes U+FFFD byte by byte; with remove_extra_whitespaces,
//      leading/trailing spaces go and runs collapse to one; add_dummy_prefix
//      puts one space in front; escape_whitespaces writes ' ' as U+2581.
//   2. segment: unigram Viterbi over the normalized bytes. A piece's score is
//      its log-probability; a user-defined symbol of n bytes scores
//      n * max(FLT_MIN, best normal score) - 0.1, so it always wins; a
//      character no single piece covers is <unk> with (worst score - 10). On
//      equal scores the path seen first (earlier start, then shorter piece)
//      is kept.
//   3. unknowns: with byte_fallback each byte of an unknown span becomes its
//      <0xNN> piece; without it a run of unknown characters is one <unk>.
#ifndef PIPETRAIN_CORE_DATA_SENTENCEPIECE_MODEL_H_
#define PIPETRAIN_CORE_DATA_SENTENCEPIECE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace pipetrain {

// The piece of a language tag: "<2" + code + ">", e.g. <2zh_CN>. `data vocab`
// puts one per corpus language into the vocabulary as a user-defined symbol.
std::string LanguageTagPiece(const std::string& code);

class SentencePieceModel {
 public:
  // Reads a `.model` file. Errors name the file: missing, unreadable, not a
  // model, a model type other than unigram, inconsistent pieces.
  static absl::StatusOr<SentencePieceModel> Load(const std::string& path);
  // The same from the file's bytes; `name` is what errors call it.
  static absl::StatusOr<SentencePieceModel> FromSerialized(std::string_view bytes,
                                                           const std::string& name);

  // The ids of `utf8` (any bytes: invalid UTF-8 is encoded as U+FFFD). No
  // <s>/</s> are added. The empty string gives no ids.
  std::vector<int32_t> Encode(const std::string& utf8) const;
  // The text of `ids`: control pieces (<pad>, <s>, </s>) print nothing,
  // <unk> prints the model's unk surface (" \u2047 "), runs of byte pieces are
  // decoded as UTF-8 (an invalid byte prints U+FFFD), U+2581 prints as a space
  // and the dummy-prefix space of the first piece is dropped. An id outside
  // [0, vocab_size) prints like <unk>.
  std::string Decode(absl::Span<const int32_t> ids) const;

  // The id of a piece of the vocabulary (any type), -1 when absent.
  int32_t PieceToId(const std::string& piece) const;
  // The piece of `id`; the empty string for an id out of range.
  const std::string& IdToPiece(int32_t id) const;
  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }

  // The model's normalization rule name ("identity", "nmt_nfkc", ...).
  const std::string& normalizer_name() const { return normalizer_name_; }
  // `utf8` as step 1 above leaves it (U+2581 for escaped spaces).
  std::string Normalize(std::string_view utf8) const;

  enum class PieceType : uint8_t {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };
  PieceType piece_type(int32_t id) const { return types_[id]; }

 private:
  // A byte trie over pieces: node 0 is the root; `value` is a piece id or -1.
  struct Trie {
    struct Node {
      int32_t value = -1;
      uint32_t first_edge = 0;
      uint32_t num_edges = 0;
    };
    std::vector<Node> nodes;
    std::vector<uint8_t> labels;    // per edge, sorted within a node
    std::vector<int32_t> children;  // per edge
    std::array<int32_t, 256> root{};

    void Build(const std::vector<std::pair<std::string_view, int32_t>>& keys);
    bool empty() const { return nodes.size() <= 1; }
    // The child of `node` along byte `c`, or -1.
    int32_t Child(int32_t node, uint8_t c) const;
  };

  // A view of the model's precompiled charsmap: a darts-clone double array
  // whose leaves point into a block of '\0'-ended replacement strings.
  struct CharsMap {
    std::vector<uint32_t> units;
    std::string replacements;
    bool empty() const { return units.empty(); }
    // The longest rule matching a prefix of `text`: its length (0: none) and
    // its replacement.
    size_t LongestMatch(std::string_view text, std::string_view* replacement) const;
  };

  SentencePieceModel() = default;
  // The replacement of the text's first unit and how many bytes it consumes.
  std::pair<std::string_view, size_t> NormalizePrefix(std::string_view text) const;
  // Appends the normalized form of `utf8` to `out`.
  void NormalizeInto(std::string_view utf8, std::string* out) const;
  // Appends the ids of a normalized string.
  void SegmentInto(std::string_view normalized, std::vector<int32_t>* ids) const;

  std::vector<std::string> pieces_;
  std::vector<PieceType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> reserved_ids_;  // unknown, control, byte
  std::unordered_map<std::string, int32_t> piece_ids_;     // normal, user-defined, unused
  std::array<int32_t, 256> byte_ids_{};                    // <0xNN>, with byte_fallback
  Trie pieces_trie_;                                       // normal, user-defined, unused
  Trie user_symbols_trie_;                                 // user-defined only
  CharsMap charsmap_;
  int32_t unk_id_ = -1;
  float min_score_ = 0;
  float max_score_ = 0;
  bool byte_fallback_ = false;
  bool add_dummy_prefix_ = true;
  bool remove_extra_whitespaces_ = true;
  bool escape_whitespaces_ = true;
  std::string normalizer_name_;
  std::string unk_surface_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_SENTENCEPIECE_MODEL_H_
