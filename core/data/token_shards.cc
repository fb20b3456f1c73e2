#include "core/data/token_shards.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"
#include "core/util/log.h"

namespace pipetrain {
namespace {

constexpr char kRebuildHint[] = "rebuild the shards with `pipetrain data shard --corpus DIR`";

absl::Status Corrupt(const std::string& path, const std::string& why) {
  return absl::DataLossError(absl::StrCat(path, ": ", why, "; ", kRebuildHint));
}

// Magic, version and byte order, shared by both binary kinds.
absl::Status CheckPreamble(const std::string& path, const char* magic, const char* expected,
                           const char* kind, uint32_t version, uint32_t byte_order) {
  if (std::memcmp(magic, expected, 8) != 0) {
    return Corrupt(path, absl::StrCat("not a pipetrain ", kind, " file (bad magic)"));
  }
  if (byte_order != kShardByteOrderMark) {
    return Corrupt(path, "written on a machine of the other byte order");
  }
  if (version != kShardVersion) {
    return Corrupt(path, absl::StrCat("format version ", version, ", this build reads version ",
                                      kShardVersion));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> HashFileContents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  uint64_t h = 0xcbf29ce484222325ull;
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buffer[i]);
      h *= 0x100000001b3ull;
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  return h;
}

std::string HashHex(uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

// ---------------------------------------------------------------- TokenShard

absl::StatusOr<TokenShard> TokenShard::Open(const std::string& path) {
  TokenShard shard;
  PT_ASSIGN_OR_RETURN(shard.file_, MappedFile::Open(path));
  const int64_t file_size = static_cast<int64_t>(shard.file_->size());
  if (file_size < static_cast<int64_t>(sizeof(TokenShardHeader))) {
    return Corrupt(path, absl::StrCat("only ", file_size, " bytes, shorter than the ",
                                      sizeof(TokenShardHeader), "-byte header (truncated?)"));
  }
  TokenShardHeader& h = shard.header_;
  std::memcpy(&h, shard.file_->data(), sizeof(h));
  PT_RETURN_IF_ERROR(
      CheckPreamble(path, h.magic, kTokenShardMagic, "token shard", h.version, h.byte_order));
  if (h.token_bytes != 2 && h.token_bytes != 4) {
    return Corrupt(path, absl::StrCat("token width ", h.token_bytes, " bytes (expected 2 or 4)"));
  }
  if (h.vocab_size <= 0 || (h.token_bytes == 2 && h.vocab_size > 65536)) {
    return Corrupt(path, absl::StrCat("vocabulary size ", h.vocab_size, " does not fit ",
                                      h.token_bytes, "-byte ids"));
  }
  // Bounds that keep the size arithmetic below far from overflow.
  constexpr int64_t kMaxCount = int64_t{1} << 40;
  if (h.sentences < 0 || h.sentences > kMaxCount || h.tokens < 0 || h.tokens > kMaxCount ||
      h.text_bytes < -1 || h.text_bytes > kMaxCount || h.languages == 0 || h.languages > 65535) {
    return Corrupt(path,
                   absl::StrCat("implausible header (sentences=", h.sentences, " tokens=", h.tokens,
                                " text_bytes=", h.text_bytes, " languages=", h.languages, ")"));
  }
  const int64_t n = h.sentences;
  const int64_t offsets_bytes = 8 * (n + 1);
  const int64_t text_offsets_bytes = h.text_bytes >= 0 ? 8 * (n + 1) : 0;
  const int64_t languages_bytes = AlignTo8(2 * n);
  const int64_t tokens_bytes = AlignTo8(h.tokens * h.token_bytes);
  const int64_t text_bytes = std::max<int64_t>(h.text_bytes, 0);
  const int64_t expected = static_cast<int64_t>(sizeof(TokenShardHeader)) + offsets_bytes +
                           text_offsets_bytes + languages_bytes + tokens_bytes + text_bytes;
  if (file_size != expected) {
    return Corrupt(path, absl::StrCat("size is ", file_size, " bytes but its header (", n,
                                      " sentences, ", h.tokens, " tokens) needs ", expected,
                                      file_size < expected ? " (truncated?)" : ""));
  }
  const uint8_t* p = shard.file_->data() + sizeof(TokenShardHeader);
  shard.offsets_ = reinterpret_cast<const int64_t*>(p);
  p += offsets_bytes;
  if (h.text_bytes >= 0) shard.text_offsets_ = reinterpret_cast<const int64_t*>(p);
  p += text_offsets_bytes;
  shard.languages_ = reinterpret_cast<const uint16_t*>(p);
  p += languages_bytes;
  shard.tokens_ = p;
  p += tokens_bytes;
  shard.text_ = reinterpret_cast<const char*>(p);

  // One pass over the index arrays and the ids: a flipped byte anywhere in
  // them is found here rather than as a wild read during training.
  auto check_offsets = [&](const int64_t* offsets, int64_t total, const char* what) {
    if (offsets[0] != 0 || offsets[n] != total) {
      return Corrupt(path, absl::StrCat(what, " offsets run from ", offsets[0], " to ", offsets[n],
                                        ", expected 0 to ", total));
    }
    for (int64_t i = 0; i < n; ++i) {
      if (offsets[i + 1] < offsets[i]) {
        return Corrupt(path,
                       absl::StrCat(what, " offset of sentence ", i + 1, " (", offsets[i + 1],
                                    ") is before that of sentence ", i, " (", offsets[i], ")"));
      }
    }
    return absl::OkStatus();
  };
  PT_RETURN_IF_ERROR(check_offsets(shard.offsets_, h.tokens, "token"));
  if (shard.text_offsets_ != nullptr) {
    PT_RETURN_IF_ERROR(check_offsets(shard.text_offsets_, h.text_bytes, "text"));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (shard.languages_[i] >= h.languages) {
      return Corrupt(path, absl::StrCat("sentence ", i, " has language index ", shard.languages_[i],
                                        " of ", h.languages));
    }
  }
  for (int64_t i = 0; i < h.tokens; ++i) {
    int64_t id;
    if (h.token_bytes == 2) {
      id = reinterpret_cast<const uint16_t*>(shard.tokens_)[i];
    } else {
      id = reinterpret_cast<const int32_t*>(shard.tokens_)[i];
    }
    if (id < 0 || id >= h.vocab_size) {
      return Corrupt(path, absl::StrCat("token ", i, " has id ", id, ", outside the vocabulary of ",
                                        h.vocab_size));
    }
  }
  return shard;
}

void TokenShard::AppendTokens(int64_t sentence, std::vector<int32_t>* out) const {
  const int64_t begin = offsets_[sentence], end = offsets_[sentence + 1];
  if (header_.token_bytes == 2) {
    const uint16_t* ids = reinterpret_cast<const uint16_t*>(tokens_);
    out->insert(out->end(), ids + begin, ids + end);
  } else {
    const int32_t* ids = reinterpret_cast<const int32_t*>(tokens_);
    out->insert(out->end(), ids + begin, ids + end);
  }
}

std::string_view TokenShard::Text(int64_t sentence) const {
  if (text_offsets_ == nullptr) return {};
  return std::string_view(
      text_ + text_offsets_[sentence],
      static_cast<size_t>(text_offsets_[sentence + 1] - text_offsets_[sentence]));
}

// ----------------------------------------------------------------- PairShard

absl::StatusOr<PairShard> PairShard::Open(const std::string& path, const TokenShard& tokens) {
  PairShard shard;
  PT_ASSIGN_OR_RETURN(shard.file_, MappedFile::Open(path));
  const int64_t file_size = static_cast<int64_t>(shard.file_->size());
  if (file_size < static_cast<int64_t>(sizeof(PairShardHeader))) {
    return Corrupt(path, absl::StrCat("only ", file_size, " bytes, shorter than the ",
                                      sizeof(PairShardHeader), "-byte header (truncated?)"));
  }
  PairShardHeader& h = shard.header_;
  std::memcpy(&h, shard.file_->data(), sizeof(h));
  PT_RETURN_IF_ERROR(
      CheckPreamble(path, h.magic, kPairShardMagic, "pair shard", h.version, h.byte_order));
  const TokenShardHeader& t = tokens.header();
  if (h.vocab_hash != t.vocab_hash || h.sentences != t.sentences || h.tokens != t.tokens ||
      h.languages != t.languages) {
    return Corrupt(path, absl::StrCat("was written for another ", tokens.path(), " (vocabulary ",
                                      HashHex(h.vocab_hash), ", ", h.sentences, " sentences, ",
                                      h.tokens, " tokens; that file has ", HashHex(t.vocab_hash),
                                      ", ", t.sentences, ", ", t.tokens, ")"));
  }
  constexpr int64_t kMaxCount = int64_t{1} << 40;
  if (h.groups < 0 || h.groups > kMaxCount || h.pairs < 0 || h.pairs > kMaxCount) {
    return Corrupt(path,
                   absl::StrCat("implausible header (groups=", h.groups, " pairs=", h.pairs, ")"));
  }
  const int64_t expected = static_cast<int64_t>(sizeof(PairShardHeader)) +
                           h.groups * static_cast<int64_t>(sizeof(PairGroup)) + 8 * h.pairs;
  if (file_size != expected) {
    return Corrupt(path, absl::StrCat("size is ", file_size, " bytes but its header (", h.groups,
                                      " language pairs, ", h.pairs, " pairs) needs ", expected,
                                      file_size < expected ? " (truncated?)" : ""));
  }
  const uint8_t* p = shard.file_->data() + sizeof(PairShardHeader);
  shard.groups_ =
      absl::MakeConstSpan(reinterpret_cast<const PairGroup*>(p), static_cast<size_t>(h.groups));
  shard.pairs_ = reinterpret_cast<const uint32_t*>(p + h.groups * sizeof(PairGroup));
  int64_t next = 0;
  for (size_t g = 0; g < shard.groups_.size(); ++g) {
    const PairGroup& group = shard.groups_[g];
    const bool ordered =
        g == 0 || std::pair(shard.groups_[g - 1].lang_a, shard.groups_[g - 1].lang_b) <
                      std::pair(group.lang_a, group.lang_b);
    if (group.lang_a >= group.lang_b || group.lang_b >= h.languages || !ordered ||
        group.first != next || group.count < 0 || group.count > h.pairs - next) {
      return Corrupt(path, absl::StrCat("group ", g, " (languages ", group.lang_a, ", ",
                                        group.lang_b, ", pairs ", group.first, "+", group.count,
                                        ") is out of order or out of range"));
    }
    next += group.count;
  }
  if (next != h.pairs) {
    return Corrupt(path, absl::StrCat("groups hold ", next, " pairs, header says ", h.pairs));
  }
  return shard;
}

const PairGroup* PairShard::FindGroup(int32_t a, int32_t b) const {
  if (a > b) std::swap(a, b);
  const auto key = std::pair<uint32_t, uint32_t>(a, b);
  const auto it = std::lower_bound(groups_.begin(), groups_.end(), key,
                                   [](const PairGroup& g, const std::pair<uint32_t, uint32_t>& k) {
                                     return std::pair(g.lang_a, g.lang_b) < k;
                                   });
  if (it == groups_.end() || it->lang_a != key.first || it->lang_b != key.second) return nullptr;
  return &*it;
}

absl::StatusOr<std::pair<int64_t, int64_t>> PairShard::Pair(const PairGroup& group, int64_t i,
                                                            const TokenShard& tokens) const {
  const int64_t k = group.first + i;
  const int64_t a = pairs_[2 * k], b = pairs_[2 * k + 1];
  if (a >= tokens.size() || b >= tokens.size() ||
      tokens.Language(a) != static_cast<int32_t>(group.lang_a) ||
      tokens.Language(b) != static_cast<int32_t>(group.lang_b)) {
    return Corrupt(
        path(), absl::StrCat("pair ", k, " (sentences ", a, ", ", b, ") does not join languages ",
                             group.lang_a, " and ", group.lang_b, " of ", tokens.path()));
  }
  return std::pair(a, b);
}

// -------------------------------------------------------------- CorpusShards

int32_t CorpusShards::LanguageIndex(const std::string& code) const {
  for (size_t i = 0; i < languages_.size(); ++i) {
    if (languages_[i].code == code) return static_cast<int32_t>(i);
  }
  return -1;
}

std::string SealShardManifest(const std::string& body) {
  return absl::StrCat(body, "crc32c\t", Crc32cHex(Crc32c(body)), "\n");
}

absl::StatusOr<CorpusShards> CorpusShards::Open(const std::string& dir) {
  CorpusShards shards;
  shards.dir_ = dir;
  const std::string manifest = absl::StrCat(dir, "/", kShardManifestName);
  std::ifstream in(manifest, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot open ", manifest, ": ", std::strerror(errno),
        "; write the shards with `pipetrain data shard --corpus CORPUS --out ", dir, "`"));
  }
  // A manifest is a few lines per language; anything far larger is not one
  // (and must not be read whole into memory).
  // Read in chunks up to one past the limit, not into a buffer of the
  // limit's size: zeroing 16 MiB for a manifest of a few hundred bytes cost
  // about 10 ms per open (the shard fuzzer ran at 100 inputs/s).
  constexpr std::streamsize kMaxManifestBytes = 16 << 20;
  std::string text;
  std::string chunk(64 << 10, '\0');
  while (text.size() <= static_cast<size_t>(kMaxManifestBytes)) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    text.append(chunk.data(), static_cast<size_t>(in.gcount()));
    if (!in) break;
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", manifest));
  auto bad = [&](int64_t line, const std::string& why) {
    return absl::DataLossError(absl::StrCat(manifest, ":", line, ": ", why, "; ", kRebuildHint));
  };
  if (text.size() > static_cast<size_t>(kMaxManifestBytes)) {
    return bad(1, absl::StrCat("larger than ", kMaxManifestBytes, " bytes: not a shard manifest"));
  }

  // The seal first: when the manifest carries its CRC-32C, no line is
  // trusted before the bytes are known to be the ones written.
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t seal_line = lines.size();  // index of the crc32c line; none yet
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!absl::StartsWith(lines[i], "crc32c")) continue;
    if (seal_line != lines.size() || i + 1 != lines.size()) {
      return bad(static_cast<int64_t>(i + 1),
                 "a crc32c line that is not the manifest's last line: the manifest is damaged");
    }
    seal_line = i;
  }
  shards.manifest_sealed_ = seal_line != lines.size();
  if (shards.manifest_sealed_) {
    const size_t body_bytes = static_cast<size_t>(lines[seal_line].data() - text.data());
    const uint32_t crc = Crc32c(text.data(), body_bytes);
    const std::string expected = absl::StrCat("crc32c\t", Crc32cHex(crc), "\n");
    if (text.compare(body_bytes, std::string::npos, expected) != 0) {
      std::string said(lines[seal_line].substr(std::min<size_t>(7, lines[seal_line].size())));
      if (body_bytes + lines[seal_line].size() == text.size()) said += " (no newline after it)";
      return absl::DataLossError(absl::StrCat(
          manifest, " has CRC-32C ", Crc32cHex(crc), ", its last line says '",
          absl::CHexEscape(said),
          "': the manifest is corrupted and none of its lines can be trusted; ", kRebuildHint));
    }
    lines.pop_back();
  }

  uint32_t format = 0;
  bool hash_seen = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const int64_t number = static_cast<int64_t>(i + 1);
    const std::string line(lines[i]);
    const std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f[0] == "format") {
      if (f.size() != 3 || f[1] != "pipetrain-shards" || !absl::SimpleAtoi(f[2], &format) ||
          format < 1 || format > kShardManifestVersion) {
        return bad(number,
                   absl::StrCat("format line '", absl::CHexEscape(line),
                                "', expected 'format\\tpipetrain-shards\\t", kShardManifestVersion,
                                "' (or 1, before manifests carried their CRC-32C)"));
      }
    } else if (f[0] == "corpus" && f.size() == 2) {
      shards.corpus_dir_ = f[1];
    } else if (f[0] == "vocab" && f.size() == 2) {
      shards.vocab_path_ = f[1];
    } else if (f[0] == "vocab_hash" && f.size() == 2) {
      if (!absl::SimpleHexAtoi(f[1], &shards.vocab_hash_)) {
        return bad(number, absl::StrCat("vocab_hash '", f[1], "' is not hexadecimal"));
      }
      hash_seen = true;
    } else if (f[0] == "vocab_size" && f.size() == 2) {
      if (!absl::SimpleAtoi(f[1], &shards.vocab_size_) || shards.vocab_size_ <= 0) {
        return bad(number, absl::StrCat("vocab_size '", f[1], "' is not a positive integer"));
      }
    } else if (f[0] == "language" && f.size() == 3) {
      ShardLanguage language{.code = f[1], .line = number};
      if (language.code.empty() || !absl::SimpleAtoi(f[2], &language.tag_id) ||
          language.tag_id < 0) {
        return bad(number, absl::StrCat("language line '", absl::CHexEscape(line),
                                        "' needs a code and a tag id"));
      }
      shards.languages_.push_back(std::move(language));
    } else if (f[0] != "token_bytes" && !f[0].empty()) {
      return bad(number, absl::StrCat("unknown line '", absl::CHexEscape(line), "'"));
    }
  }
  const int64_t last = static_cast<int64_t>(lines.size());
  if (format == 0 || !hash_seen || shards.vocab_size_ <= 0 || shards.languages_.empty()) {
    return bad(last, "incomplete: needs format, vocab_hash, vocab_size and language lines");
  }
  if (format >= 2 && !shards.manifest_sealed_) {
    return bad(last + 1, absl::StrCat("format ", format,
                                      " but the last line is not 'crc32c\\t0x<8 hex digits>': "
                                      "the manifest is truncated or damaged"));
  }
  if (format == 1 && shards.manifest_sealed_) {
    return bad(last + 1, "format 1 manifests carry no crc32c line: the manifest is damaged");
  }
  if (format == 1) {
    // Shards written before manifests carried a CRC are kept usable: every
    // line that decides what is trained is still cross-checked (vocabulary
    // hash, size and language count against the binary headers, tag ids
    // against the vocabulary by CheckLanguageTags), so a damaged line is
    // refused there; only the informational paths go unchecked.
    LogWarning("data",
               "%s is format 1, written before shard manifests carried their own CRC-32C: "
               "its language tags are checked against the vocabulary and its counts against "
               "the shard files, the rest cannot be checked. Rebuild the shards with `pipetrain "
               "data shard` to add one",
               manifest);
  }
  for (const ShardLanguage& language : shards.languages_) {
    if (language.tag_id >= shards.vocab_size_) {
      return bad(language.line, absl::StrCat("tag id ", language.tag_id, " of ", language.code,
                                             " is outside the vocabulary of ", shards.vocab_size_));
    }
  }
  for (int split = 0; split < kNumSplits; ++split) {
    const std::string stem = absl::StrCat(dir, "/", std::string(SplitName(split)));
    PT_ASSIGN_OR_RETURN(TokenShard tokens, TokenShard::Open(stem + ".tokens"));
    const TokenShardHeader& h = tokens.header();
    if (h.vocab_hash != shards.vocab_hash_ || h.vocab_size != shards.vocab_size_ ||
        h.languages != shards.languages_.size()) {
      return Corrupt(tokens.path(),
                     absl::StrCat("built with vocabulary ", HashHex(h.vocab_hash), " (",
                                  h.vocab_size, " pieces) over ", h.languages, " languages, but ",
                                  manifest, " says ", HashHex(shards.vocab_hash_), " (",
                                  shards.vocab_size_, " pieces) over ", shards.languages_.size()));
    }
    shards.tokens_[split] = std::make_unique<TokenShard>(std::move(tokens));
    PT_ASSIGN_OR_RETURN(PairShard pairs, PairShard::Open(stem + ".pairs", *shards.tokens_[split]));
    shards.pairs_[split] = std::make_unique<PairShard>(std::move(pairs));
  }
  return shards;
}

std::string CorpusShards::RebuildCommand(const std::string& vocab_path) const {
  return absl::StrCat("`pipetrain data shard --corpus ",
                      corpus_dir_.empty() ? std::string("CORPUS") : corpus_dir_, " --vocab ",
                      vocab_path, " --out ", dir_, "`");
}

absl::Status CorpusShards::CheckVocabulary(const std::string& vocab_path) const {
  PT_ASSIGN_OR_RETURN(const uint64_t hash, HashFileContents(vocab_path));
  if (hash == vocab_hash_) return absl::OkStatus();
  if (vocab_path == vocab_path_) {
    // The very file the shards were encoded with has other bytes now: a
    // damaged copy is as likely as a deliberate new vocabulary, and
    // rebuilding the shards from a damaged one would make it permanent.
    return absl::DataLossError(absl::StrCat(
        vocab_path, " has changed since the shards in ", dir_, " were built from it (FNV-1a hash ",
        HashHex(hash), ", ", dir_, "/", kShardManifestName, " says ", HashHex(vocab_hash_),
        "): the vocabulary is corrupted or was replaced. Restore it from a copy (a run's "
        "OUTPUT_DIR/spm.model is one), or, if you trained a new vocabulary on purpose, rebuild "
        "the shards with ",
        RebuildCommand(vocab_path)));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the shards in ", dir_, " were built with vocabulary ", vocab_path_, " (hash ",
      HashHex(vocab_hash_), ", ", vocab_size_, " pieces), but ", vocab_path, " has hash ",
      HashHex(hash), ": its ids mean other pieces. Rebuild the shards with ",
      RebuildCommand(vocab_path)));
}

absl::Status CorpusShards::CheckLanguageTags(
    const std::function<int32_t(const std::string& code)>& tag_id,
    const std::string& vocab_path) const {
  for (const ShardLanguage& language : languages_) {
    const int32_t want = tag_id(language.code);
    if (want == language.tag_id) continue;
    // Name what the wrong id is in the vocabulary, when it is another tag.
    std::string is;
    for (const ShardLanguage& other : languages_) {
      if (other.code != language.code && tag_id(other.code) == language.tag_id) {
        is = absl::StrCat(", the tag of ", other.code, " (<2", other.code, ">)");
      }
    }
    return absl::DataLossError(absl::StrCat(
        dir_, "/", kShardManifestName, ":", language.line, ": language ", language.code,
        " has tag id ", language.tag_id, is, ", but in the vocabulary ", vocab_path, " <2",
        language.code, "> is ", want < 0 ? std::string("missing") : absl::StrCat("id ", want),
        ": training would give its targets another language's tag. The manifest is damaged or "
        "belongs to another vocabulary; rebuild the shards with ",
        RebuildCommand(vocab_path)));
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
