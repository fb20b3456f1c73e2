#include "core/data/sentencepiece_model.h"

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/sentencepiece_model.pb.h"

namespace pipetrain {
namespace {

using spm::ModelProto;
using spm::TrainerSpec;

// U+2581 LOWER ONE EIGHTH BLOCK: how an escaped space looks inside a piece.
constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";
// U+FFFD, the stand-in for a byte that is not valid UTF-8.
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";
// How much worse than the worst piece an unknown character scores.
constexpr float kUnknownPenalty = 10.0f;

// The length of the UTF-8 sequence a lead byte announces, from its high
// nibble; continuation and invalid bytes count 1. SentencePiece steps through
// text with exactly this table, so positions agree even on broken input.
inline size_t OneCharLen(const char* p) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(*p) >> 4];
}

inline bool IsTrailByte(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }
inline bool IsValidCodepoint(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

// Whether `text` starts with one well-formed UTF-8 character (shortest form,
// no surrogate, at most U+10FFFF); `*length` is its byte length, or 1 when it
// is not. Like SentencePiece, a literal U+FFFD counts as valid.
bool ValidCharPrefix(std::string_view text, size_t* length) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(text[i])); };
  *length = 1;
  const size_t n = text.size();
  if (b(0) < 0x80) return true;
  if (n >= 2 && (b(0) & 0xE0) == 0xC0) {
    const uint32_t cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    if (IsTrailByte(text[1]) && cp >= 0x80 && IsValidCodepoint(cp)) {
      *length = 2;
      return true;
    }
  } else if (n >= 3 && (b(0) & 0xF0) == 0xE0) {
    const uint32_t cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (IsTrailByte(text[1]) && IsTrailByte(text[2]) && cp >= 0x800 && IsValidCodepoint(cp)) {
      *length = 3;
      return true;
    }
  } else if (n >= 4 && (b(0) & 0xF8) == 0xF0) {
    const uint32_t cp =
        ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    if (IsTrailByte(text[1]) && IsTrailByte(text[2]) && IsTrailByte(text[3]) && cp >= 0x10000 &&
        IsValidCodepoint(cp)) {
      *length = 4;
      return true;
    }
  }
  return false;
}

std::string BytePiece(int byte) { return absl::StrFormat("<0x%02X>", byte); }

// The byte of a piece spelled <0xNN> (upper-case hex, as spm_train writes
// it), or -1.
int PieceByte(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = piece[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

std::string LanguageTagPiece(const std::string& code) { return absl::StrCat("<2", code, ">"); }

// --- Trie ---------------------------------------------------------------------

void SentencePieceModel::Trie::Build(
    const std::vector<std::pair<std::string_view, int32_t>>& keys) {
  // Insert into ordered maps, then lay every node's edges out contiguously
  // and sorted by byte.
  std::vector<std::map<uint8_t, int32_t>> edges(1);
  std::vector<int32_t> values(1, -1);
  for (const auto& [key, value] : keys) {
    int32_t node = 0;
    for (const char c : key) {
      const uint8_t label = static_cast<uint8_t>(c);
      auto it = edges[node].find(label);
      if (it == edges[node].end()) {
        const int32_t child = static_cast<int32_t>(edges.size());
        edges[node].emplace(label, child);
        edges.emplace_back();
        values.push_back(-1);
        node = child;
      } else {
        node = it->second;
      }
    }
    values[node] = value;
  }
  nodes.assign(edges.size(), Node{});
  labels.clear();
  children.clear();
  root.fill(-1);
  for (size_t n = 0; n < edges.size(); ++n) {
    nodes[n].value = values[n];
    nodes[n].first_edge = static_cast<uint32_t>(labels.size());
    nodes[n].num_edges = static_cast<uint32_t>(edges[n].size());
    for (const auto& [label, child] : edges[n]) {
      labels.push_back(label);
      children.push_back(child);
      if (n == 0) root[label] = child;
    }
  }
}

int32_t SentencePieceModel::Trie::Child(int32_t node, uint8_t c) const {
  if (node == 0) return root[c];
  const Node& n = nodes[node];
  const uint8_t* begin = labels.data() + n.first_edge;
  const uint8_t* end = begin + n.num_edges;
  if (n.num_edges <= 8) {
    for (const uint8_t* p = begin; p != end; ++p) {
      if (*p == c) return children[p - labels.data()];
    }
    return -1;
  }
  const uint8_t* p = std::lower_bound(begin, end, c);
  return p != end && *p == c ? children[p - labels.data()] : -1;
}

// --- Precompiled charsmap ---------------------------------------------------------

size_t SentencePieceModel::CharsMap::LongestMatch(std::string_view text,
                                                  std::string_view* replacement) const {
  // darts-clone's unit: bit 8 says a leaf hangs below, bits 0-7 (and bit 31
  // on a leaf) are the label, the value of a leaf is its low 31 bits, and the
  // offset to the children is bits 10-31, shifted left by 8 when bit 9 is set.
  const auto has_leaf = [](uint32_t u) { return ((u >> 8) & 1) == 1; };
  const auto label = [](uint32_t u) { return u & ((1u << 31) | 0xFF); };
  const auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); };
  const size_t size = units.size();
  size_t best = 0;
  uint32_t best_value = 0;
  uint32_t pos = offset(units[0]);
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    pos ^= c;
    if (pos >= size) break;
    const uint32_t unit = units[pos];
    if (label(unit) != c) break;
    pos ^= offset(unit);
    if (pos >= size) break;
    if (has_leaf(unit)) {
      best = i + 1;
      best_value = units[pos] & ((1u << 31) - 1);
    }
  }
  if (best == 0) return 0;
  if (best_value >= replacements.size()) {
    // A rule pointing outside the strings: the file is damaged; treat the
    // text as having no rule rather than read out of bounds.
    return 0;
  }
  const char* start = replacements.data() + best_value;
  const size_t room = replacements.size() - best_value;
  const void* nul = std::memchr(start, '\0', room);
  *replacement = std::string_view(start, nul ? static_cast<const char*>(nul) - start : room);
  return best;
}

// --- Loading --------------------------------------------------------------------

absl::StatusOr<SentencePieceModel> SentencePieceModel::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open the SentencePiece model (",
                                            std::strerror(errno),
                                            "); make one with `pipetrain data vocab`"));
  }
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(path, ": reading the SentencePiece model failed"));
  }
  return FromSerialized(bytes.str(), path);
}

absl::StatusOr<SentencePieceModel> SentencePieceModel::FromSerialized(std::string_view bytes,
                                                                      const std::string& name) {
  const auto bad = [&name](auto&&... why) {
    return absl::DataLossError(absl::StrCat(name, ": ", why...));
  };
  ModelProto proto;
  if (bytes.empty()) return bad("empty file; not a SentencePiece model");
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return bad(
        "not a SentencePiece model (the protobuf does not parse); expected the .model "
        "file spm_train writes");
  }
  if (proto.pieces_size() == 0) {
    return bad("not a SentencePiece model (no pieces); expected the .model file spm_train writes");
  }
  const TrainerSpec& trainer = proto.trainer_spec();
  if (trainer.model_type() != TrainerSpec::UNIGRAM) {
    return absl::UnimplementedError(
        absl::StrCat(name, ": model type ", TrainerSpec::ModelType_Name(trainer.model_type()),
                     " is not supported; pipetrain encodes unigram models only (spm_train "
                     "--model_type=unigram, what `pipetrain data vocab` makes)"));
  }
  if (trainer.treat_whitespace_as_suffix()) {
    return absl::UnimplementedError(
        absl::StrCat(name, ": treat_whitespace_as_suffix is not supported; train without it"));
  }
  if (proto.has_denormalizer_spec() && !proto.denormalizer_spec().precompiled_charsmap().empty()) {
    return absl::UnimplementedError(absl::StrCat(
        name,
        ": a denormalization rule is not supported; train without --denormalization_rule_tsv"));
  }

  SentencePieceModel m;
  const int32_t n = proto.pieces_size();
  m.pieces_.reserve(n);
  m.types_.reserve(n);
  m.scores_.reserve(n);
  m.byte_ids_.fill(-1);
  m.byte_fallback_ = trainer.byte_fallback();
  m.min_score_ = FLT_MAX;
  // SentencePiece starts the maximum at FLT_MIN (the smallest positive
  // float), not at -FLT_MAX; with all log-probabilities negative it stays
  // there, and that value sets the user-defined symbols' score.
  m.max_score_ = FLT_MIN;
  std::vector<std::pair<std::string_view, int32_t>> trie_keys, user_keys;
  for (int32_t id = 0; id < n; ++id) {
    const ModelProto::SentencePiece& p = proto.pieces(id);
    if (p.piece().empty()) return bad("piece ", id, " is empty");
    const ModelProto::SentencePiece::Type type = p.type();
    const bool in_text = type == ModelProto::SentencePiece::NORMAL ||
                         type == ModelProto::SentencePiece::USER_DEFINED ||
                         type == ModelProto::SentencePiece::UNUSED;
    auto& ids = in_text ? m.piece_ids_ : m.reserved_ids_;
    if (const auto [it, inserted] = ids.emplace(p.piece(), id); !inserted) {
      return bad("piece '", p.piece(), "' is defined twice (ids ", it->second, " and ", id, ")");
    }
    switch (type) {
      case ModelProto::SentencePiece::NORMAL:
        m.min_score_ = std::min(m.min_score_, p.score());
        m.max_score_ = std::max(m.max_score_, p.score());
        break;
      case ModelProto::SentencePiece::UNKNOWN:
        if (m.unk_id_ >= 0) return bad("two unknown pieces (ids ", m.unk_id_, " and ", id, ")");
        m.unk_id_ = id;
        break;
      case ModelProto::SentencePiece::BYTE: {
        if (!m.byte_fallback_) {
          return bad("byte piece '", p.piece(), "' (id ", id, ") although byte_fallback is off");
        }
        const int byte = PieceByte(p.piece());
        if (byte < 0) return bad("byte piece '", p.piece(), "' (id ", id, ") is not <0xNN>");
        m.byte_ids_[byte] = id;
        break;
      }
      default:
        break;
    }
    m.pieces_.push_back(p.piece());
    m.types_.push_back(static_cast<PieceType>(type));
    m.scores_.push_back(p.score());
  }
  if (m.unk_id_ < 0) return bad("no unknown piece (<unk>)");
  if (m.byte_fallback_) {
    for (int b = 0; b < 256; ++b) {
      if (m.byte_ids_[b] < 0)
        return bad("byte_fallback is on but piece ", BytePiece(b), " is missing");
    }
  }
  // The tries point into pieces_, which no longer moves.
  for (int32_t id = 0; id < n; ++id) {
    const PieceType type = m.types_[id];
    if (type == PieceType::kNormal || type == PieceType::kUserDefined ||
        type == PieceType::kUnused) {
      trie_keys.emplace_back(m.pieces_[id], id);
    }
    if (type == PieceType::kUserDefined) user_keys.emplace_back(m.pieces_[id], id);
  }
  if (trie_keys.empty()) return bad("no normal or user-defined piece to encode text with");
  m.pieces_trie_.Build(trie_keys);
  m.user_symbols_trie_.Build(user_keys);

  const spm::NormalizerSpec& normalizer = proto.normalizer_spec();
  m.normalizer_name_ = normalizer.name();
  m.add_dummy_prefix_ = normalizer.add_dummy_prefix();
  m.remove_extra_whitespaces_ = normalizer.remove_extra_whitespaces();
  m.escape_whitespaces_ = normalizer.escape_whitespaces();
  m.unk_surface_ = trainer.unk_surface();
  const std::string& blob = normalizer.precompiled_charsmap();
  if (!blob.empty()) {
    // <uint32 little-endian: trie bytes><trie><replacement strings>
    uint32_t trie_bytes = 0;
    if (blob.size() > 4) {
      for (int i = 3; i >= 0; --i) trie_bytes = (trie_bytes << 8) | static_cast<uint8_t>(blob[i]);
    }
    if (blob.size() <= 4 || trie_bytes >= blob.size() - 4 || trie_bytes < 4) {
      return bad("the normalization rule '", m.normalizer_name_,
                 "' (precompiled_charsmap) is damaged: its trie does not fit the blob");
    }
    m.charsmap_.units.resize(trie_bytes / 4);
    for (size_t u = 0; u < m.charsmap_.units.size(); ++u) {
      uint32_t v = 0;
      for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(blob[4 + 4 * u + i]);
      m.charsmap_.units[u] = v;
    }
    m.charsmap_.replacements = blob.substr(4 + trie_bytes);
  }
  return m;
}

// --- Lookups ------------------------------------------------------------------------

int32_t SentencePieceModel::PieceToId(const std::string& piece) const {
  if (const auto it = reserved_ids_.find(piece); it != reserved_ids_.end()) return it->second;
  if (const auto it = piece_ids_.find(piece); it != piece_ids_.end()) return it->second;
  return -1;
}

const std::string& SentencePieceModel::IdToPiece(int32_t id) const {
  static const std::string kNone;
  return id >= 0 && id < vocab_size() ? pieces_[id] : kNone;
}

// --- Normalization -------------------------------------------------------------------

std::pair<std::string_view, size_t> SentencePieceModel::NormalizePrefix(
    std::string_view text) const {
  // A user-defined symbol passes untouched (the longest one that matches).
  if (!user_symbols_trie_.empty()) {
    size_t longest = 0;
    int32_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      node = user_symbols_trie_.Child(node, static_cast<uint8_t>(text[i]));
      if (node < 0) break;
      if (user_symbols_trie_.nodes[node].value >= 0) longest = i + 1;
    }
    if (longest > 0) return {text.substr(0, longest), longest};
  }
  if (!charsmap_.empty()) {
    std::string_view replacement;
    if (const size_t length = charsmap_.LongestMatch(text, &replacement); length > 0) {
      return {replacement, length};
    }
  }
  size_t length;
  if (!ValidCharPrefix(text, &length)) return {kReplacementChar, 1};
  return {text.substr(0, length), length};
}

void SentencePieceModel::NormalizeInto(std::string_view text, std::string* out) const {
  if (text.empty()) return;
  if (remove_extra_whitespaces_) {
    while (!text.empty()) {
      const auto [unit, consumed] = NormalizePrefix(text);
      if (unit != " ") break;
      text.remove_prefix(consumed);
    }
    if (text.empty()) return;  // only whitespace
  }
  const size_t start = out->size();
  const auto append_space = [&] {
    if (escape_whitespaces_) {
      out->append(kSpaceSymbol);
    } else {
      out->push_back(' ');
    }
  };
  if (add_dummy_prefix_) append_space();
  bool previous_was_space = remove_extra_whitespaces_;
  while (!text.empty()) {
    auto [unit, consumed] = NormalizePrefix(text);
    // Collapse a run: spaces right after a space are dropped.
    while (previous_was_space && !unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (!unit.empty()) {
      if (escape_whitespaces_ && unit.find(' ') != std::string_view::npos) {
        for (const char c : unit) {
          if (c == ' ') {
            out->append(kSpaceSymbol);
          } else {
            out->push_back(c);
          }
        }
      } else {
        out->append(unit);
      }
      previous_was_space = unit.back() == ' ';
    }
    text.remove_prefix(consumed);
    if (!remove_extra_whitespaces_) previous_was_space = false;
  }
  if (remove_extra_whitespaces_) {
    const std::string_view space = escape_whitespaces_ ? kSpaceSymbol : std::string_view(" ");
    while (out->size() - start >= space.size() &&
           std::string_view(*out).substr(out->size() - space.size()) == space) {
      out->resize(out->size() - space.size());
    }
  }
}

std::string SentencePieceModel::Normalize(std::string_view utf8) const {
  std::string out;
  NormalizeInto(utf8, &out);
  return out;
}

// --- Segmentation ---------------------------------------------------------------------

void SentencePieceModel::SegmentInto(std::string_view normalized, std::vector<int32_t>* ids) const {
  if (normalized.empty()) return;
  // The best path that ends at each byte position: its score, where its last
  // piece starts, and that piece. Candidates compare with '>' in the order
  // SentencePiece visits them (start positions left to right, then pieces by
  // length), so ties resolve the same way.
  struct BestPath {
    float score = 0;
    int32_t starts_at = -1;
    int32_t id = -1;
  };
  const int32_t size = static_cast<int32_t>(normalized.size());
  thread_local std::vector<BestPath> best;
  best.assign(size + 1, BestPath{});
  const float unk_score = min_score_ - kUnknownPenalty;
  const Trie& trie = pieces_trie_;
  for (int32_t start = 0; start < size;) {
    const float score_here = best[start].score;
    const int32_t char_len = std::min<int32_t>(
        static_cast<int32_t>(OneCharLen(normalized.data() + start)), size - start);
    bool single_char_piece = false;
    int32_t node = 0;
    for (int32_t end = start; end < size;) {
      node = trie.Child(node, static_cast<uint8_t>(normalized[end]));
      if (node < 0) break;
      ++end;
      const int32_t id = trie.nodes[node].value;
      if (id < 0) continue;
      const PieceType type = types_[id];
      if (type == PieceType::kUnused) continue;
      BestPath& target = best[end];
      const int32_t length = end - start;
      // As in SentencePiece, the piece's score is a double (a user-defined
      // symbol scores length * max - 0.1, the bonus that makes it win), the
      // sum with the float path score is compared in double and stored as
      // a float. Adding in float instead flips near-ties of equal sums.
      const double score = type == PieceType::kUserDefined
                               ? static_cast<double>(static_cast<float>(length) * max_score_) - 0.1
                               : static_cast<double>(scores_[id]);
      const double candidate = score + static_cast<double>(score_here);
      if (target.starts_at == -1 || candidate > static_cast<double>(target.score)) {
        target = {static_cast<float>(candidate), start, id};
      }
      if (length == char_len) single_char_piece = true;
    }
    if (!single_char_piece) {
      BestPath& target = best[start + char_len];
      const float candidate = unk_score + score_here;
      if (target.starts_at == -1 || candidate > target.score) {
        target = {candidate, start, unk_id_};
      }
    }
    start += char_len;
  }

  // Walk back from the end, then emit front to back.
  thread_local std::vector<std::pair<int32_t, int32_t>> path;  // (start, id)
  path.clear();
  for (int32_t end = size; end > 0; end = best[end].starts_at) {
    path.emplace_back(best[end].starts_at, best[end].id);
  }
  bool previous_unknown = false;
  int32_t end = 0;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    const auto [start, id] = *it;
    end = (it + 1 == path.rend()) ? size : (it + 1)->first;
    const bool unknown = id == unk_id_;
    if (unknown && byte_fallback_) {
      for (int32_t i = start; i < end; ++i)
        ids->push_back(byte_ids_[static_cast<uint8_t>(normalized[i])]);
    } else if (!(unknown && previous_unknown)) {
      // A run of unknown characters is one <unk>.
      ids->push_back(id);
    }
    previous_unknown = unknown;
  }
}

std::vector<int32_t> SentencePieceModel::Encode(const std::string& utf8) const {
  std::vector<int32_t> ids;
  if (utf8.empty()) return ids;
  thread_local std::string normalized;
  normalized.clear();
  NormalizeInto(utf8, &normalized);
  SegmentInto(normalized, &ids);
  return ids;
}

// --- Decoding -------------------------------------------------------------------------

std::string SentencePieceModel::Decode(absl::Span<const int32_t> ids) const {
  std::string text;
  // Byte pieces are gathered and decoded as UTF-8 when the run ends.
  std::string bytes;
  const auto flush_bytes = [&] {
    std::string_view rest(bytes);
    while (!rest.empty()) {
      size_t length;
      if (ValidCharPrefix(rest, &length)) {
        text.append(rest.substr(0, length));
      } else {
        text.append(kReplacementChar);
      }
      rest.remove_prefix(length);
    }
    bytes.clear();
  };
  // The dummy-prefix space: the first piece that prints loses its leading
  // U+2581. `at_start` turns off for good once text has been printed or a
  // piece has lost its space (with remove_extra_whitespaces every leading
  // space goes, so it stays on until text appears).
  bool at_start = true;
  bool dropped_prefix = false;
  const bool strip_prefix = add_dummy_prefix_ || remove_extra_whitespaces_;
  for (const int32_t id : ids) {
    const bool in_range = id >= 0 && id < vocab_size();
    if (in_range && types_[id] == PieceType::kByte) {
      bytes.push_back(static_cast<char>(PieceByte(pieces_[id])));
      continue;
    }
    flush_bytes();
    if (dropped_prefix || !text.empty()) at_start = false;
    dropped_prefix = false;
    if (!in_range || types_[id] == PieceType::kUnknown) {
      text.append(unk_surface_);
      continue;
    }
    if (types_[id] == PieceType::kControl) continue;
    std::string_view piece = pieces_[id];
    if (at_start && strip_prefix && piece.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
      piece.remove_prefix(kSpaceSymbol.size());
      dropped_prefix = !remove_extra_whitespaces_;
    }
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.substr(pos, kSpaceSymbol.size()) == kSpaceSymbol) {
        text.push_back(' ');
        pos += kSpaceSymbol.size();
      } else {
        text.push_back(piece[pos]);
        ++pos;
      }
    }
  }
  flush_bytes();
  return text;
}

}  // namespace pipetrain
