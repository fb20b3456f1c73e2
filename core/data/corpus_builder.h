// The multi-way corpus in memory, and the rules that turn what the sources
// read into train/dev/test: the split, the hold-out, pair counting, the
// --min-pairs cut and duplicate removal. Sources (gettext_source.h,
// tsv_corpus.h) add aligned messages; Build() applies the rules; Write()
// stores the result. docs/data.md describes the rules and the files.
//
// A message is one sentence and its translations, at most one per language:
// a gettext msgid with every locale's msgstr, or one line of a user's TSV.
// Every two languages of a message form a pair, in both directions. The full
// cross product (tens of thousands of directions) is never written out: the
// corpus is stored as messages, and a sampler forms any direction on the fly
// (multiway_corpus.h reads it back).
#ifndef PIPETRAIN_CORE_DATA_CORPUS_BUILDER_H_
#define PIPETRAIN_CORE_DATA_CORPUS_BUILDER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pipetrain {

inline constexpr int kNumSplits = 3;  // train, dev, test
std::string_view SplitName(int split);

struct CorpusOptions {
  // Shares of pivot sentences (English for gettext) held out; the rest trains.
  double dev_fraction = 0.01;
  double test_fraction = 0.01;
  // A direction is kept when its train split has at least this many distinct
  // pairs; a language is kept while it has a kept direction.
  int64_t min_pairs = 1;
  bool progress = true;  // on stderr while counting pairs
};

struct DirectionCount {
  std::string src, tgt;
  std::array<int64_t, kNumSplits> pairs{};  // distinct (src text, tgt text) per split
};

struct LanguageCount {
  std::string code;
  int64_t directions = 0;                       // kept directions with this source
  std::array<int64_t, kNumSplits> sentences{};  // its texts in the written messages
  std::vector<std::string> sources;             // locale directories or files it came from
};

struct CorpusSummary {
  int64_t languages = 0;
  int64_t directions = 0;                      // ordered: a→b and b→a count twice
  std::array<int64_t, kNumSplits> pairs{};     // summed over the kept directions
  std::array<int64_t, kNumSplits> messages{};  // written
  int64_t TotalPairs() const { return pairs[0] + pairs[1] + pairs[2]; }
  std::vector<DirectionCount> direction_counts;  // sorted by (src, tgt)
  std::vector<LanguageCount> language_counts;    // sorted by code
};

class CorpusBuilder {
 public:
  using LangId = uint32_t;
  static constexpr uint32_t kNoMessage = UINT32_MAX;

  explicit CorpusBuilder(CorpusOptions options = {});
  ~CorpusBuilder();
  CorpusBuilder(const CorpusBuilder&) = delete;
  CorpusBuilder& operator=(const CorpusBuilder&) = delete;

  // `code` must already be normalised (language_codes.h).
  LangId Language(std::string_view code);
  const std::string& LanguageName(LangId lang) const { return languages_[lang]; }
  // Where a language's texts came from, listed in languages.tsv.
  void NoteSource(LangId lang, std::string_view source);

  // Texts must be valid UTF-8 without tab, newline or carriage return (the
  // output is TSV); text_filters.h ensures it. A text that breaks this is
  // refused (kNoMessage / false) and counted as internal.bad_text.
  //
  // Starts a message. Its pivot (the English msgid; the source side of a
  // user's pair) decides its split.
  uint32_t AddMessage(LangId pivot_lang, std::string_view pivot_text);
  // Adds a translation. When the message already has one in `lang` (two
  // locales merged into one code), the lower rank wins; on a tie the first.
  bool AddTranslation(uint32_t message, LangId lang, int rank, std::string_view text);
  std::string_view PivotText(uint32_t message) const;

  // Named counters (what was read, what was dropped and why): stats.tsv.
  void Count(std::string_view what, int64_t n = 1);
  const std::map<std::string, int64_t, std::less<>>& counts() const { return counts_; }

  // The split (0 train, 1 dev, 2 test) of a pivot sentence: a hash of
  // "lang\ttext", so the same sentence lands in the same split whatever
  // catalog or file it came from.
  int SplitOf(std::string_view pivot_lang, std::string_view pivot_text) const;

  // Applies the rules; call once, after every source has been added.
  absl::StatusOr<CorpusSummary> Build();
  // Writes {train,dev,test}.messages.tsv, directions.tsv, languages.tsv,
  // languages.txt and stats.tsv into `dir` (created if needed). After Build.
  absl::Status Write(const std::string& dir) const;

 private:
  struct Entry {
    uint32_t text;
    LangId lang;
    int rank;
  };
  struct Message {
    uint32_t pivot;
    uint8_t split = 0;
    bool alive = true;
    std::vector<Entry> entries;  // the pivot first
  };
  using PairCounts = std::unordered_map<uint64_t, std::array<int64_t, kNumSplits>>;

  static bool Writable(std::string_view text);
  uint32_t InternText(LangId lang, std::string_view text);
  std::string_view Text(uint32_t id) const;
  void AssignSplitsAndHoldOut();
  void CountPairs(int split, PairCounts* counts) const;
  void DropLanguagesAndDirections(const PairCounts& counts, std::vector<bool>* kept_language);
  void RemoveDuplicateMessages();
  absl::Status WriteMessages(const std::string& path, int split) const;

  CorpusOptions options_;
  std::vector<std::string> languages_;
  std::unordered_map<std::string, LangId> language_ids_;
  std::vector<std::vector<std::string>> sources_;
  // (lang, text) → id. The keys hold the text after a 4-byte language prefix.
  std::unordered_map<std::string, uint32_t> text_ids_;
  std::vector<const std::string*> text_keys_;
  std::vector<Message> messages_;
  std::map<std::string, int64_t, std::less<>> counts_;
  bool built_ = false;
  CorpusSummary summary_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_CORPUS_BUILDER_H_
