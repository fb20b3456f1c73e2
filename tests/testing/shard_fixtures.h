// Test fixtures for the shard writer and the loader: a small multi-way
// corpus written in the format of `pipetrain data build` (docs/data.md), and
// a fake byte-level vocabulary that can be decoded back to the text, so a
// test can tell which corpus pair a batch row came from.
#ifndef PIPETRAIN_TESTS_TESTING_SHARD_FIXTURES_H_
#define PIPETRAIN_TESTS_TESTING_SHARD_FIXTURES_H_

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/data/batch.h"
#include "core/data/corpus_builder.h"
#include "core/data/multiway_corpus.h"
#include "core/data/token_shard_writer.h"
#include "core/data/token_shards.h"
#include "core/philox.h"

namespace pipetrain::testing {

// A message: (language, text) per language that has it.
using TestMessage = std::vector<std::pair<std::string, std::string>>;

// Writes DIR/{train,dev,test}.messages.tsv, directions.tsv (every ordered
// pair of languages with a train pair, counted with MultiwayCorpus::Pairs)
// and languages.txt, as `pipetrain data build` lays them out.
inline void WriteTestCorpus(const std::string& dir,
                            const std::vector<std::vector<TestMessage>>& splits) {
  std::filesystem::create_directories(dir);
  std::set<std::string> codes;
  for (int split = 0; split < kNumSplits; ++split) {
    std::ofstream out(absl::StrCat(dir, "/", std::string(SplitName(split)), ".messages.tsv"));
    for (size_t id = 0; id < splits[split].size(); ++id) {
      for (const auto& [lang, text] : splits[split][id]) {
        out << id << "\t" << lang << "\t" << text << "\n";
        codes.insert(lang);
      }
    }
  }
  std::vector<MultiwayCorpus> read;
  for (int split = 0; split < kNumSplits; ++split) {
    read.push_back(*ReadMultiwayCorpus(
        absl::StrCat(dir, "/", std::string(SplitName(split)), ".messages.tsv")));
  }
  std::ofstream directions(dir + "/directions.tsv");
  directions << "src\ttgt\ttrain_pairs\tdev_pairs\ttest_pairs\n";
  for (const std::string& a : codes) {
    for (const std::string& b : codes) {
      if (a == b) continue;
      const size_t train = read[0].Pairs(a, b).size();
      if (train == 0) continue;
      directions << a << "\t" << b << "\t" << train << "\t" << read[1].Pairs(a, b).size() << "\t"
                 << read[2].Pairs(a, b).size() << "\n";
    }
  }
  std::ofstream languages(dir + "/languages.txt");
  for (const std::string& code : codes) languages << code << "\n";
}

// A corpus with directions of very different sizes: every message has
// English; the other languages join with falling probability. Texts start
// with their language code (so a decoded text names its language), have 1 to
// `max_words` words, and a few repeat an earlier message's text (as
// "Annuler" translates both "Cancel" and "Abort"), so duplicates are formed.
inline std::vector<std::vector<TestMessage>> MakeTestCorpus(int train_messages, int max_words,
                                                            uint64_t seed) {
  const std::vector<std::pair<std::string, double>> languages = {
      {"de", 0.9}, {"fr", 0.6}, {"ja", 0.25}, {"pt_BR", 0.08}};
  const int sizes[kNumSplits] = {train_messages, train_messages / 10 + 3, train_messages / 10 + 3};
  std::vector<std::vector<TestMessage>> splits(kNumSplits);
  for (int split = 0; split < kNumSplits; ++split) {
    PhiloxStream rng(RngKey{.seed = seed, .step = static_cast<uint32_t>(split), .layer = 77});
    uint64_t k = 0;
    auto text = [&](const std::string& lang, int message) {
      const int words = 1 + static_cast<int>(rng.Bits(k++) % max_words);
      std::string t = lang;
      for (int w = 0; w < words; ++w) {
        absl::StrAppend(&t, " w", rng.Bits(k++) % 50, split == 0 ? "" : "h", message % 7);
      }
      return t;
    };
    for (int m = 0; m < sizes[split]; ++m) {
      TestMessage message = {{"en", text("en", m)}};
      for (const auto& [lang, p] : languages) {
        if (rng.Uniform(k++) >= p) continue;
        // One in ten reuses the text of the previous message in that language.
        std::string t = text(lang, m);
        if (m > 0 && rng.Uniform(k++) < 0.1f) {
          for (const auto& [l, prev] : splits[split][m - 1]) {
            if (l == lang) t = prev;
          }
        }
        message.emplace_back(lang, t);
      }
      splits[split].push_back(std::move(message));
    }
  }
  return splits;
}

// Shard options for tests: no progress lines, two threads.
inline ShardOptions QuietShardOptions() {
  ShardOptions options;
  options.progress = false;
  options.threads = 2;
  return options;
}

// A byte-level vocabulary: id 4 + b for byte b, then one tag per language at
// `tag_base` + its index (so a large tag_base makes a vocabulary over 65,536
// ids). Its "model file" is a small text file, hashed like a real one.
class FakeVocabulary {
 public:
  FakeVocabulary(const std::string& path, std::vector<std::string> tagged, int32_t tag_base = 260,
                 const std::string& salt = "")
      : path_(path), tagged_(std::move(tagged)), tag_base_(tag_base) {
    std::ofstream out(path);
    out << "fake byte vocabulary " << tag_base << salt << "\n";
    for (const std::string& code : tagged_) out << code << "\n";
  }

  int32_t vocab_size() const { return tag_base_ + static_cast<int32_t>(tagged_.size()); }

  ShardVocabulary Get() const {
    ShardVocabulary v;
    v.path = path_;
    v.hash = *HashFileContents(path_);
    v.vocab_size = vocab_size();
    v.encode = [](const std::string& text) {
      std::vector<int32_t> ids;
      for (unsigned char c : text) ids.push_back(kFirstContentId + c);
      return ids;
    };
    v.language_tag_id = [this](const std::string& code) { return TagId(code); };
    return v;
  }

  int32_t TagId(const std::string& code) const {
    const auto it = std::find(tagged_.begin(), tagged_.end(), code);
    return it == tagged_.end() ? -1 : tag_base_ + static_cast<int32_t>(it - tagged_.begin());
  }

  // The text of content ids; tags and specials are not text.
  static std::string Decode(const std::vector<int32_t>& ids, size_t from = 0) {
    std::string text;
    for (size_t i = from; i < ids.size(); ++i) {
      text.push_back(static_cast<char>(ids[i] - kFirstContentId));
    }
    return text;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> tagged_;
  int32_t tag_base_;
};

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_SHARD_FIXTURES_H_
