#include "core/data/corpus_builder.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/progress_meter.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

constexpr const char* kSplitNames[kNumSplits] = {"train", "dev", "test"};
// Split buckets: a pivot's hash modulo this picks train, dev or test.
constexpr uint64_t kSplitBuckets = 1000000;

// FNV-1a over "lang\ttext", then splitmix64's finaliser so that the low
// digits used for the bucket depend on every byte.
uint64_t PivotHash(std::string_view lang, std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto add = [&h](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ull;
  };
  for (char c : lang) add(static_cast<unsigned char>(c));
  add('\t');
  for (char c : text) add(static_cast<unsigned char>(c));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

uint64_t PairKey(uint32_t a, uint32_t b) { return uint64_t{a} << 32 | b; }

absl::Status WriteAtomically(const std::string& path,
                             const std::function<void(std::ostream&)>& body) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    body(out);
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("writing ", tmp, " failed (disk full?)"));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("renaming ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

std::string_view SplitName(int split) { return kSplitNames[split]; }

CorpusBuilder::CorpusBuilder(CorpusOptions options) : options_(options) {}
CorpusBuilder::~CorpusBuilder() = default;

CorpusBuilder::LangId CorpusBuilder::Language(std::string_view code) {
  auto [it, inserted] =
      language_ids_.emplace(std::string(code), static_cast<LangId>(languages_.size()));
  if (inserted) {
    languages_.emplace_back(code);
    sources_.emplace_back();
  }
  return it->second;
}

void CorpusBuilder::NoteSource(LangId lang, std::string_view source) {
  std::vector<std::string>& list = sources_[lang];
  if (std::find(list.begin(), list.end(), source) == list.end()) list.emplace_back(source);
}

bool CorpusBuilder::Writable(std::string_view text) {
  return text.find_first_of("\t\n\r") == std::string_view::npos;
}

uint32_t CorpusBuilder::InternText(LangId lang, std::string_view text) {
  std::string key(sizeof(lang) + text.size(), '\0');
  std::memcpy(key.data(), &lang, sizeof(lang));
  std::memcpy(key.data() + sizeof(lang), text.data(), text.size());
  auto [it, inserted] = text_ids_.emplace(std::move(key), static_cast<uint32_t>(text_keys_.size()));
  if (inserted) text_keys_.push_back(&it->first);
  return it->second;
}

std::string_view CorpusBuilder::Text(uint32_t id) const {
  return std::string_view(*text_keys_[id]).substr(sizeof(LangId));
}

uint32_t CorpusBuilder::AddMessage(LangId pivot_lang, std::string_view pivot_text) {
  if (!Writable(pivot_text) || messages_.size() >= kNoMessage) {
    Count("internal.bad_text");
    return kNoMessage;
  }
  Message m;
  m.pivot = InternText(pivot_lang, pivot_text);
  m.entries.push_back(Entry{m.pivot, pivot_lang, 0});
  messages_.push_back(std::move(m));
  return static_cast<uint32_t>(messages_.size() - 1);
}

bool CorpusBuilder::AddTranslation(uint32_t message, LangId lang, int rank, std::string_view text) {
  if (message >= messages_.size() || !Writable(text)) {
    Count("internal.bad_text");
    return false;
  }
  std::vector<Entry>& entries = messages_[message].entries;
  for (Entry& e : entries) {
    if (e.lang != lang) continue;
    if (rank < e.rank) {
      e = Entry{InternText(lang, text), lang, rank};
      Count("merged.replaced_by_lower_rank");
    } else {
      Count("merged.kept_lower_rank");
    }
    return true;
  }
  entries.push_back(Entry{InternText(lang, text), lang, rank});
  return true;
}

std::string_view CorpusBuilder::PivotText(uint32_t message) const {
  return Text(messages_[message].pivot);
}

void CorpusBuilder::Count(std::string_view what, int64_t n) {
  auto it = counts_.find(what);
  if (it == counts_.end()) {
    counts_.emplace(std::string(what), n);
  } else {
    it->second += n;
  }
}

int CorpusBuilder::SplitOf(std::string_view pivot_lang, std::string_view pivot_text) const {
  const uint64_t bucket = PivotHash(pivot_lang, pivot_text) % kSplitBuckets;
  const auto dev = static_cast<uint64_t>(options_.dev_fraction * kSplitBuckets);
  const auto test = static_cast<uint64_t>(options_.test_fraction * kSplitBuckets);
  if (bucket < dev) return 1;
  if (bucket < dev + test) return 2;
  return 0;
}

// Dev and test are decided by the pivot; then every sentence that a dev or
// test message holds, in any language, is removed from train (and test's
// from dev), so that no held-out sentence is trained on in any direction,
// even when two pivots share a translation ("Cancel" and "Abort" → "Annuler").
void CorpusBuilder::AssignSplitsAndHoldOut() {
  for (Message& m : messages_) {
    if (m.entries.size() < 2) {
      m.alive = false;
      Count("dropped.message_without_translation");
      continue;
    }
    const Entry& pivot = m.entries.front();
    m.split = static_cast<uint8_t>(SplitOf(languages_[pivot.lang], Text(pivot.text)));
  }
  std::vector<uint8_t> held(text_keys_.size(), 0);
  for (const Message& m : messages_) {
    if (!m.alive || m.split == 0) continue;
    for (const Entry& e : m.entries) held[e.text] |= m.split == 1 ? 1 : 2;
  }
  for (Message& m : messages_) {
    if (!m.alive || m.split == 2) continue;
    const uint8_t mask = m.split == 0 ? 3 : 2;
    const size_t before = m.entries.size();
    std::erase_if(m.entries, [&](const Entry& e) { return (held[e.text] & mask) != 0; });
    if (m.entries.size() == before) continue;
    Count(m.split == 0 ? "held_out.train_sentences_removed" : "held_out.dev_sentences_removed",
          static_cast<int64_t>(before - m.entries.size()));
    if (m.entries.size() < 2) {
      m.alive = false;
      Count("held_out.messages_emptied");
    }
  }
}

// Distinct (text a, text b) pairs of every language pair a < b: sorted per
// language a, so memory stays at one language's pairs at a time.
void CorpusBuilder::CountPairs(int split, PairCounts* counts) const {
  const size_t num_languages = languages_.size();
  std::vector<std::vector<uint32_t>> by_language(num_languages);
  for (uint32_t i = 0; i < messages_.size(); ++i) {
    const Message& m = messages_[i];
    if (!m.alive || m.split != split) continue;
    for (const Entry& e : m.entries) by_language[e.lang].push_back(i);
  }
  struct Pair {
    LangId b;
    uint32_t ta, tb;
    bool operator<(const Pair& o) const { return std::tie(b, ta, tb) < std::tie(o.b, o.ta, o.tb); }
    bool operator==(const Pair& o) const = default;
  };
  std::vector<Pair> pairs;
  ProgressMeter progress(absl::StrCat("counting ", kSplitNames[split], " pairs: languages"),
                         static_cast<int64_t>(num_languages), options_.progress);
  for (LangId a = 0; a < num_languages; ++a) {
    progress.Update(a);
    pairs.clear();
    for (uint32_t i : by_language[a]) {
      const std::vector<Entry>& entries = messages_[i].entries;
      uint32_t ta = 0;
      for (const Entry& e : entries) {
        if (e.lang == a) ta = e.text;
      }
      for (const Entry& e : entries) {
        if (e.lang > a) pairs.push_back(Pair{e.lang, ta, e.text});
      }
    }
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    for (const Pair& p : pairs) ++(*counts)[PairKey(a, p.b)][split];
  }
  progress.Finish(static_cast<int64_t>(num_languages));
}

void CorpusBuilder::DropLanguagesAndDirections(const PairCounts& counts,
                                               std::vector<bool>* kept_language) {
  kept_language->assign(languages_.size(), false);
  std::vector<bool> seen(languages_.size(), false);
  for (const auto& [key, c] : counts) {
    const auto a = static_cast<LangId>(key >> 32), b = static_cast<LangId>(key & 0xffffffffu);
    seen[a] = seen[b] = true;
    if (c[0] >= options_.min_pairs) {
      (*kept_language)[a] = (*kept_language)[b] = true;
    } else {
      Count("min_pairs.directions_dropped", 2);
    }
  }
  // Every language that was asked for but is not kept is named: a locale
  // whose translations were all filtered out, or one too thin for min_pairs.
  std::vector<std::string> dropped;
  for (size_t l = 0; l < languages_.size(); ++l) {
    if ((*kept_language)[l]) continue;
    dropped.push_back(languages_[l]);
    Count(seen[l] ? "min_pairs.languages_dropped" : "dropped.languages_without_pairs");
  }
  if (!dropped.empty() && options_.progress) {
    std::sort(dropped.begin(), dropped.end());
    std::fprintf(stderr, "[data] languages dropped (no direction with %lld train pairs): %s\n",
                 static_cast<long long>(options_.min_pairs), absl::StrJoin(dropped, " ").c_str());
  }
  for (Message& m : messages_) {
    if (!m.alive) continue;
    std::erase_if(m.entries, [&](const Entry& e) { return !(*kept_language)[e.lang]; });
    if (m.entries.size() < 2) {
      m.alive = false;
      Count("min_pairs.messages_emptied");
    }
  }
}

// A message whose every sentence is also in another message of the same
// pivot and split adds no pair: "Cancel" in fifty catalogs, translated alike.
void CorpusBuilder::RemoveDuplicateMessages() {
  std::unordered_map<uint64_t, std::vector<uint32_t>> groups;
  for (uint32_t i = 0; i < messages_.size(); ++i) {
    const Message& m = messages_[i];
    if (m.alive) groups[uint64_t{m.split} << 32 | m.pivot].push_back(i);
  }
  std::vector<uint64_t> keys;
  for (const auto& [key, members] : groups) {
    if (members.size() > 1) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());  // the result must not depend on hash order
  for (uint64_t key : keys) {
    std::vector<uint32_t>& members = groups[key];
    std::stable_sort(members.begin(), members.end(), [&](uint32_t x, uint32_t y) {
      return messages_[x].entries.size() > messages_[y].entries.size();
    });
    std::vector<std::vector<uint32_t>> kept;
    for (uint32_t i : members) {
      std::vector<uint32_t> texts;
      for (const Entry& e : messages_[i].entries) texts.push_back(e.text);
      std::sort(texts.begin(), texts.end());
      const bool duplicate = std::any_of(kept.begin(), kept.end(), [&](const auto& k) {
        return std::includes(k.begin(), k.end(), texts.begin(), texts.end());
      });
      if (duplicate) {
        messages_[i].alive = false;
        Count("dedup.messages_removed");
      } else {
        kept.push_back(std::move(texts));
      }
    }
  }
}

absl::StatusOr<CorpusSummary> CorpusBuilder::Build() {
  if (built_) return absl::FailedPreconditionError("CorpusBuilder::Build called twice");
  PT_CHECK_ARG(options_.dev_fraction >= 0 && options_.test_fraction >= 0 &&
                   options_.dev_fraction + options_.test_fraction < 1,
               "dev_fraction (", options_.dev_fraction, ") and test_fraction (",
               options_.test_fraction, ") must be >= 0 and leave some data to train on");
  PT_CHECK_ARG(options_.min_pairs >= 1, "min_pairs must be at least 1, got ", options_.min_pairs);
  AssignSplitsAndHoldOut();
  PairCounts counts;
  for (int split = 0; split < kNumSplits; ++split) CountPairs(split, &counts);
  std::vector<bool> kept_language;
  DropLanguagesAndDirections(counts, &kept_language);
  RemoveDuplicateMessages();

  CorpusSummary summary;
  std::vector<LanguageCount> by_id(languages_.size());
  for (const auto& [key, c] : counts) {
    if (c[0] < options_.min_pairs) continue;
    const auto a = static_cast<LangId>(key >> 32), b = static_cast<LangId>(key & 0xffffffffu);
    summary.direction_counts.push_back(DirectionCount{languages_[a], languages_[b], c});
    summary.direction_counts.push_back(DirectionCount{languages_[b], languages_[a], c});
    ++by_id[a].directions;
    ++by_id[b].directions;
    for (int s = 0; s < kNumSplits; ++s) summary.pairs[s] += 2 * c[s];
  }
  for (const Message& m : messages_) {
    if (!m.alive) continue;
    ++summary.messages[m.split];
    for (const Entry& e : m.entries) ++by_id[e.lang].sentences[m.split];
  }
  for (LangId l = 0; l < languages_.size(); ++l) {
    if (!kept_language[l]) continue;
    by_id[l].code = languages_[l];
    by_id[l].sources = sources_[l];
    summary.language_counts.push_back(std::move(by_id[l]));
  }
  std::sort(summary.direction_counts.begin(), summary.direction_counts.end(),
            [](const DirectionCount& x, const DirectionCount& y) {
              return std::tie(x.src, x.tgt) < std::tie(y.src, y.tgt);
            });
  std::sort(summary.language_counts.begin(), summary.language_counts.end(),
            [](const LanguageCount& x, const LanguageCount& y) { return x.code < y.code; });
  summary.languages = static_cast<int64_t>(summary.language_counts.size());
  summary.directions = static_cast<int64_t>(summary.direction_counts.size());
  summary_ = summary;
  built_ = true;
  return summary;
}

absl::Status CorpusBuilder::WriteMessages(const std::string& path, int split) const {
  // Within a message, languages in code order: the file is the same
  // whatever order the sources were read in.
  return WriteAtomically(path, [&](std::ostream& out) {
    int64_t id = 0;
    std::vector<const Entry*> entries;
    for (const Message& m : messages_) {
      if (!m.alive || m.split != split) continue;
      entries.clear();
      for (const Entry& e : m.entries) entries.push_back(&e);
      std::sort(entries.begin(), entries.end(), [&](const Entry* x, const Entry* y) {
        return languages_[x->lang] < languages_[y->lang];
      });
      for (const Entry* e : entries) {
        out << id << '\t' << languages_[e->lang] << '\t' << Text(e->text) << '\n';
      }
      ++id;
    }
  });
}

absl::Status CorpusBuilder::Write(const std::string& dir) const {
  if (!built_) return absl::FailedPreconditionError("CorpusBuilder::Write before Build");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  for (int split = 0; split < kNumSplits; ++split) {
    PT_RETURN_IF_ERROR(
        WriteMessages(absl::StrCat(dir, "/", kSplitNames[split], ".messages.tsv"), split));
  }
  const CorpusSummary& s = summary_;
  PT_RETURN_IF_ERROR(WriteAtomically(dir + "/directions.tsv", [&](std::ostream& out) {
    out << "src\ttgt\ttrain_pairs\tdev_pairs\ttest_pairs\n";
    for (const DirectionCount& d : s.direction_counts) {
      out << d.src << '\t' << d.tgt << '\t' << d.pairs[0] << '\t' << d.pairs[1] << '\t'
          << d.pairs[2] << '\n';
    }
  }));
  PT_RETURN_IF_ERROR(WriteAtomically(dir + "/languages.tsv", [&](std::ostream& out) {
    out << "language\tdirections\ttrain_sentences\tdev_sentences\ttest_sentences\tsources\n";
    for (const LanguageCount& l : s.language_counts) {
      out << l.code << '\t' << l.directions << '\t' << l.sentences[0] << '\t' << l.sentences[1]
          << '\t' << l.sentences[2] << '\t' << absl::StrJoin(l.sources, ",") << '\n';
    }
  }));
  PT_RETURN_IF_ERROR(WriteAtomically(dir + "/languages.txt", [&](std::ostream& out) {
    for (const LanguageCount& l : s.language_counts) out << l.code << '\n';
  }));
  return WriteAtomically(dir + "/stats.tsv", [&](std::ostream& out) {
    out << "key\tvalue\n";
    out << "languages\t" << s.languages << '\n';
    out << "directions\t" << s.directions << '\n';
    out << "pairs\t" << s.TotalPairs() << '\n';
    for (int split = 0; split < kNumSplits; ++split) {
      out << "pairs." << kSplitNames[split] << '\t' << s.pairs[split] << '\n';
    }
    for (int split = 0; split < kNumSplits; ++split) {
      out << "messages." << kSplitNames[split] << '\t' << s.messages[split] << '\n';
    }
    out << "option.dev_fraction\t" << options_.dev_fraction << '\n';
    out << "option.test_fraction\t" << options_.test_fraction << '\n';
    out << "option.min_pairs\t" << options_.min_pairs << '\n';
    for (const auto& [name, value] : counts_) out << name << '\t' << value << '\n';
  });
}

}  // namespace pipetrain
