#include "core/data/token_shard_writer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/batch.h"
#include "core/data/multiway_corpus.h"
#include "core/data/progress_meter.h"
#include "core/data/token_shards.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;

// Sentences encoded per work item: large enough to make the hand-off cheap,
// small enough to keep both cores busy to the end.
constexpr int64_t kEncodeChunk = 2048;

// Writes `path` through `path.tmp` and a rename, so a reader never sees a
// half-written shard under the final name.
absl::Status WriteAtomically(const std::string& path,
                             const std::function<absl::Status(std::ofstream&)>& body,
                             int64_t* bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
    }
    PT_RETURN_IF_ERROR(body(out));
    out.seekp(0, std::ios::end);
    *bytes += static_cast<int64_t>(out.tellp());
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("writing ", tmp, " failed (disk full?)"));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

template <typename T>
void WriteArray(std::ostream& out, const T* data, int64_t count) {
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
}

void PadTo8(std::ostream& out, int64_t written) {
  static constexpr char kZeros[8] = {};
  out.write(kZeros, static_cast<std::streamsize>(AlignTo8(written) - written));
}

absl::StatusOr<std::vector<std::string>> ReadLanguageList(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno),
                                            "; is it a corpus written by `pipetrain data build`?"));
  }
  std::vector<std::string> codes;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) codes.push_back(line);
  }
  return codes;
}

// The kept languages (sorted) and language pairs (a < b, as indices into them).
struct Selection {
  std::vector<std::string> languages;
  std::vector<std::pair<int32_t, int32_t>> pairs;
  std::vector<std::string> dropped;
};

absl::StatusOr<Selection> SelectLanguages(const std::string& corpus_dir,
                                          const std::vector<std::string>& wanted) {
  const std::string list_path = corpus_dir + "/languages.txt";
  PT_ASSIGN_OR_RETURN(const std::vector<std::string> all, ReadLanguageList(list_path));
  std::set<std::string> chosen;
  if (wanted.empty()) {
    chosen.insert(all.begin(), all.end());
  } else {
    const std::set<std::string> known(all.begin(), all.end());
    for (const std::string& code : wanted) {
      if (known.count(code) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("language '", code, "' is not in ", list_path, " (", all.size(),
                         " languages; codes as the corpus writes them, e.g. pt_BR, zh_CN)"));
      }
      chosen.insert(code);
    }
  }
  PT_ASSIGN_OR_RETURN(const std::vector<CorpusDirection> directions,
                      ReadDirections(corpus_dir + "/directions.tsv"));
  std::set<std::pair<std::string, std::string>> unordered;
  std::set<std::string> connected;
  for (const CorpusDirection& d : directions) {
    if (chosen.count(d.src) == 0 || chosen.count(d.tgt) == 0) continue;
    unordered.emplace(std::min(d.src, d.tgt), std::max(d.src, d.tgt));
    connected.insert(d.src);
    connected.insert(d.tgt);
  }
  Selection selection;
  for (const std::string& code : chosen) {
    if (connected.count(code) != 0) {
      selection.languages.push_back(code);
    } else {
      selection.dropped.push_back(code);
    }
  }
  if (selection.languages.size() > 65535) {
    return absl::InvalidArgumentError("more than 65,535 languages do not fit the shard format");
  }
  auto index = [&](const std::string& code) {
    return static_cast<int32_t>(
        std::lower_bound(selection.languages.begin(), selection.languages.end(), code) -
        selection.languages.begin());
  };
  for (const auto& [a, b] : unordered) selection.pairs.emplace_back(index(a), index(b));
  std::sort(selection.pairs.begin(), selection.pairs.end());
  if (selection.pairs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no direction of ", corpus_dir, "/directions.tsv joins two of the languages ",
                     wanted.empty() ? std::string("of the corpus") : absl::StrJoin(wanted, ",")));
  }
  return selection;
}

// A split's distinct sentences and, per message, which of them it holds.
struct SplitSentences {
  std::vector<uint16_t> language;
  std::vector<std::string_view> text;                  // into the MultiwayCorpus
  std::vector<int64_t> message_begin{0};               // into `members`
  std::vector<std::pair<uint16_t, uint32_t>> members;  // (language, sentence)
};

absl::StatusOr<SplitSentences> CollectSentences(const MultiwayCorpus& corpus,
                                                const std::vector<std::string>& languages,
                                                const std::string& path) {
  // Corpus language index → kept index, or -1.
  std::vector<int32_t> kept(corpus.languages.size(), -1);
  for (size_t i = 0; i < corpus.languages.size(); ++i) {
    const auto it = std::lower_bound(languages.begin(), languages.end(), corpus.languages[i]);
    if (it != languages.end() && *it == corpus.languages[i]) {
      kept[i] = static_cast<int32_t>(it - languages.begin());
    }
  }
  SplitSentences s;
  std::vector<std::unordered_map<std::string_view, uint32_t>> index(languages.size());
  for (const MultiwayCorpus::Message& message : corpus.messages) {
    for (const auto& [corpus_lang, text] : message) {
      const int32_t lang = kept[corpus_lang];
      if (lang < 0) continue;
      auto [it, inserted] = index[lang].emplace(text, static_cast<uint32_t>(s.text.size()));
      if (inserted) {
        if (s.text.size() >= 0xFFFFFFFFu) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": more than 2^32-1 distinct sentences in one split"));
        }
        s.language.push_back(static_cast<uint16_t>(lang));
        s.text.push_back(text);
      }
      s.members.emplace_back(static_cast<uint16_t>(lang), it->second);
    }
    s.message_begin.push_back(static_cast<int64_t>(s.members.size()));
  }
  return s;
}

// Encoded sentences, in order: ids back to back and their offsets.
struct Encoded {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets{0};
};

absl::StatusOr<Encoded> EncodeAll(const SplitSentences& s, const ShardVocabulary& vocab,
                                  const std::vector<std::string>& languages,
                                  const std::string& split, const ShardOptions& options) {
  const int64_t n = static_cast<int64_t>(s.text.size());
  const int64_t chunks = (n + kEncodeChunk - 1) / kEncodeChunk;
  std::vector<Encoded> parts(static_cast<size_t>(chunks));
  std::vector<absl::Status> errors(static_cast<size_t>(chunks));
  std::atomic<int64_t> next{0}, done{0};
  auto work = [&](bool report, ProgressMeter* meter) {
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
      Encoded& part = parts[c];
      const int64_t end = std::min(n, (c + 1) * kEncodeChunk);
      for (int64_t i = c * kEncodeChunk; i < end; ++i) {
        const std::vector<int32_t> ids = vocab.encode(std::string(s.text[i]));
        for (int32_t id : ids) {
          if (id < 0 || id >= vocab.vocab_size) {
            errors[c] = absl::InternalError(
                absl::StrCat(vocab.path, " encoded the ", languages[s.language[i]], " ", split,
                             " sentence '", std::string(s.text[i]), "' to id ", id,
                             ", outside its ", vocab.vocab_size, " pieces"));
            return;
          }
        }
        part.ids.insert(part.ids.end(), ids.begin(), ids.end());
        part.offsets.push_back(static_cast<int64_t>(part.ids.size()));
      }
      done += end - c * kEncodeChunk;
      if (report) meter->Update(done.load());
    }
  };
  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(chunks, 1)));
  ProgressMeter meter(absl::StrCat(split, " sentences encoded"), n, options.progress);
  std::vector<std::thread> helpers;
  for (int t = 1; t < threads; ++t) helpers.emplace_back(work, false, nullptr);
  work(true, &meter);  // this thread reports progress; ProgressMeter is not shared
  for (std::thread& t : helpers) t.join();
  meter.Finish(n);
  for (const absl::Status& e : errors) PT_RETURN_IF_ERROR(e);

  Encoded all;
  all.offsets.reserve(static_cast<size_t>(n) + 1);
  for (Encoded& part : parts) {
    const int64_t base = static_cast<int64_t>(all.ids.size());
    for (size_t i = 1; i < part.offsets.size(); ++i) all.offsets.push_back(base + part.offsets[i]);
    all.ids.insert(all.ids.end(), part.ids.begin(), part.ids.end());
    part = Encoded{};
  }
  return all;
}

absl::Status WriteTokenFile(const std::string& path, const SplitSentences& s, const Encoded& e,
                            const ShardVocabulary& vocab, uint32_t languages, bool with_text,
                            int64_t* bytes) {
  return WriteAtomically(
      path,
      [&](std::ofstream& out) {
        const int64_t n = static_cast<int64_t>(s.text.size());
        TokenShardHeader h{};
        std::memcpy(h.magic, kTokenShardMagic, 8);
        h.version = kShardVersion;
        h.byte_order = kShardByteOrderMark;
        h.token_bytes = vocab.vocab_size <= 65536 ? 2 : 4;
        h.vocab_size = vocab.vocab_size;
        h.vocab_hash = vocab.hash;
        h.sentences = n;
        h.tokens = static_cast<int64_t>(e.ids.size());
        h.languages = languages;
        std::vector<int64_t> text_offsets;
        if (with_text) {
          text_offsets.reserve(static_cast<size_t>(n) + 1);
          text_offsets.push_back(0);
          for (std::string_view t : s.text) {
            text_offsets.push_back(text_offsets.back() + static_cast<int64_t>(t.size()));
          }
          h.text_bytes = text_offsets.back();
        } else {
          h.text_bytes = -1;
        }
        WriteArray(out, &h, 1);
        WriteArray(out, e.offsets.data(), n + 1);
        if (with_text) WriteArray(out, text_offsets.data(), n + 1);
        WriteArray(out, s.language.data(), n);
        PadTo8(out, 2 * n);
        if (h.token_bytes == 2) {
          const std::vector<uint16_t> narrow(e.ids.begin(), e.ids.end());
          WriteArray(out, narrow.data(), h.tokens);
          PadTo8(out, 2 * h.tokens);
        } else {
          WriteArray(out, e.ids.data(), h.tokens);
          PadTo8(out, 4 * h.tokens);
        }
        if (with_text) {
          for (std::string_view t : s.text)
            out.write(t.data(), static_cast<std::streamsize>(t.size()));
        }
        return absl::OkStatus();
      },
      bytes);
}

// Groups each kept language pair's distinct sentence pairs. Works one
// language `a` at a time (its pairs with every b > a), so only one
// language's pairs are in memory at once.
absl::Status WritePairFile(const std::string& path, const SplitSentences& s,
                           const Selection& selection, const TokenShardHeader& tokens,
                           bool progress, int64_t* pairs_total, int64_t* bytes) {
  const int32_t num_languages = static_cast<int32_t>(selection.languages.size());
  std::vector<int32_t> pair_slot(static_cast<size_t>(num_languages) * num_languages, -1);
  for (size_t g = 0; g < selection.pairs.size(); ++g) {
    const auto [a, b] = selection.pairs[g];
    pair_slot[static_cast<size_t>(a) * num_languages + b] = static_cast<int32_t>(g);
  }
  // The messages holding each language, with that language's sentence.
  std::vector<std::vector<std::pair<int64_t, uint32_t>>> holders(num_languages);
  const int64_t messages = static_cast<int64_t>(s.message_begin.size()) - 1;
  for (int64_t m = 0; m < messages; ++m) {
    for (int64_t k = s.message_begin[m]; k < s.message_begin[m + 1]; ++k) {
      holders[s.members[k].first].emplace_back(m, s.members[k].second);
    }
  }
  std::vector<PairGroup> groups(selection.pairs.size());
  return WriteAtomically(
      path,
      [&](std::ofstream& out) {
        PairShardHeader h{};
        std::memcpy(h.magic, kPairShardMagic, 8);
        h.version = kShardVersion;
        h.byte_order = kShardByteOrderMark;
        h.vocab_hash = tokens.vocab_hash;
        h.sentences = tokens.sentences;
        h.tokens = tokens.tokens;
        h.groups = static_cast<int64_t>(groups.size());
        h.languages = tokens.languages;
        // Header and table are written again at the end with the counts.
        WriteArray(out, &h, 1);
        WriteArray(out, groups.data(), h.groups);
        std::vector<std::vector<uint64_t>> buckets(num_languages);
        std::vector<uint32_t> flat;
        ProgressMeter meter(absl::StrCat(fs::path(path).filename().string(), " languages paired"),
                            num_languages, progress);
        for (int32_t a = 0; a < num_languages; ++a) {
          meter.Update(a);
          for (const auto& [m, sa] : holders[a]) {
            for (int64_t k = s.message_begin[m]; k < s.message_begin[m + 1]; ++k) {
              const auto [b, sb] = s.members[k];
              if (b > a && pair_slot[static_cast<size_t>(a) * num_languages + b] >= 0) {
                buckets[b].push_back(uint64_t{sa} << 32 | sb);
              }
            }
          }
          for (int32_t b = a + 1; b < num_languages; ++b) {
            const int32_t g = pair_slot[static_cast<size_t>(a) * num_languages + b];
            if (g < 0) continue;
            std::vector<uint64_t>& bucket = buckets[b];
            std::sort(bucket.begin(), bucket.end());
            bucket.erase(std::unique(bucket.begin(), bucket.end()), bucket.end());
            groups[g] = PairGroup{.lang_a = static_cast<uint32_t>(a),
                                  .lang_b = static_cast<uint32_t>(b),
                                  .first = h.pairs,
                                  .count = static_cast<int64_t>(bucket.size())};
            flat.clear();
            for (uint64_t pair : bucket) {
              flat.push_back(static_cast<uint32_t>(pair >> 32));
              flat.push_back(static_cast<uint32_t>(pair));
            }
            WriteArray(out, flat.data(), static_cast<int64_t>(flat.size()));
            h.pairs += static_cast<int64_t>(bucket.size());
            std::vector<uint64_t>().swap(bucket);
          }
        }
        meter.Finish(num_languages);
        out.seekp(0);
        WriteArray(out, &h, 1);
        WriteArray(out, groups.data(), h.groups);
        *pairs_total = h.pairs;
        return absl::OkStatus();
      },
      bytes);
}

}  // namespace

absl::StatusOr<ShardSummary> WriteCorpusShards(const std::string& corpus_dir,
                                               const ShardVocabulary& vocab,
                                               const ShardOptions& options,
                                               const std::string& out_dir) {
  const auto start = std::chrono::steady_clock::now();
  PT_CHECK_ARG(vocab.vocab_size > kFirstContentId, "vocabulary ", vocab.path, " has ",
               vocab.vocab_size, " pieces; it needs the 4 specials and content pieces");
  PT_CHECK_ARG(vocab.encode && vocab.language_tag_id, "vocabulary ", vocab.path,
               " lacks an encoder or a tag lookup");
  PT_ASSIGN_OR_RETURN(const Selection selection, SelectLanguages(corpus_dir, options.languages));
  ShardSummary summary;
  summary.dropped_languages = selection.dropped;
  summary.languages = static_cast<int64_t>(selection.languages.size());
  summary.directions = 2 * static_cast<int64_t>(selection.pairs.size());

  std::vector<int32_t> tags;
  for (const std::string& code : selection.languages) {
    const int32_t tag = vocab.language_tag_id(code);
    if (tag < 0 || tag >= vocab.vocab_size) {
      return absl::FailedPreconditionError(
          absl::StrCat("vocabulary ", vocab.path, " has no target-language tag <2", code,
                       "> for language '", code, "' of ", corpus_dir,
                       "/languages.txt; train the vocabulary on this corpus "
                       "(`pipetrain data vocab --corpus ",
                       corpus_dir,
                       "`) or leave the language out "
                       "with --languages"));
    }
    tags.push_back(tag);
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  // Until the new manifest is written the directory is not a valid shard set.
  const std::string manifest = absl::StrCat(out_dir, "/", kShardManifestName);
  fs::remove(manifest, ec);

  for (int split = 0; split < kNumSplits; ++split) {
    const std::string name(SplitName(split));
    const std::string messages_path = absl::StrCat(corpus_dir, "/", name, ".messages.tsv");
    auto corpus = std::make_unique<MultiwayCorpus>();
    PT_ASSIGN_OR_RETURN(*corpus, ReadMultiwayCorpus(messages_path));
    PT_ASSIGN_OR_RETURN(SplitSentences sentences,
                        CollectSentences(*corpus, selection.languages, messages_path));
    PT_ASSIGN_OR_RETURN(Encoded encoded,
                        EncodeAll(sentences, vocab, selection.languages, name, options));
    const std::string stem = absl::StrCat(out_dir, "/", name);
    // Texts are kept for dev and test only: validation scores decoded output
    // against the reference text, training needs ids alone.
    PT_RETURN_IF_ERROR(WriteTokenFile(stem + ".tokens", sentences, encoded, vocab,
                                      static_cast<uint32_t>(selection.languages.size()),
                                      /*with_text=*/split != 0, &summary.bytes));
    summary.sentences[split] = static_cast<int64_t>(sentences.text.size());
    summary.tokens[split] = static_cast<int64_t>(encoded.ids.size());
    // The pair lists need only which sentences each message holds: the texts
    // and ids go first, which keeps the peak memory of the full corpus down.
    encoded = Encoded{};
    std::vector<std::string_view>().swap(sentences.text);
    corpus.reset();
    PT_ASSIGN_OR_RETURN(const TokenShard written, TokenShard::Open(stem + ".tokens"));
    int64_t unordered_pairs = 0;
    PT_RETURN_IF_ERROR(WritePairFile(stem + ".pairs", sentences, selection, written.header(),
                                     options.progress, &unordered_pairs, &summary.bytes));
    summary.pairs[split] = 2 * unordered_pairs;
  }

  // The manifest ends with the CRC-32C of its own bytes, so a flipped bit
  // in a tag id or a count is refused on open rather than trained on.
  std::string body = absl::StrCat("format\tpipetrain-shards\t", kShardManifestVersion, "\n");
  absl::StrAppend(&body, "corpus\t", corpus_dir, "\n");
  absl::StrAppend(&body, "vocab\t", vocab.path, "\n");
  absl::StrAppend(&body, "vocab_hash\t", HashHex(vocab.hash), "\n");
  absl::StrAppend(&body, "vocab_size\t", vocab.vocab_size, "\n");
  absl::StrAppend(&body, "token_bytes\t", vocab.vocab_size <= 65536 ? 2 : 4, "\n");
  for (size_t i = 0; i < selection.languages.size(); ++i) {
    absl::StrAppend(&body, "language\t", selection.languages[i], "\t", tags[i], "\n");
  }
  const std::string sealed = SealShardManifest(body);
  PT_RETURN_IF_ERROR(WriteAtomically(
      manifest,
      [&](std::ofstream& out) {
        out.write(sealed.data(), static_cast<std::streamsize>(sealed.size()));
        return absl::OkStatus();
      },
      &summary.bytes));
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace pipetrain
