// Reads back what `pipetrain data build` writes (corpus_builder.h): a
// split's messages and the list of directions, and forms the pairs of any
// direction on the fly. This is the sampler's view of the corpus.
//
//   {train,dev,test}.messages.tsv  id \t lang \t text, a message's lines
//                                  together, ids 0, 1, 2, ... in order
//   directions.tsv                 src \t tgt \t train_pairs \t dev_pairs \t test_pairs
//                                  (header line first): the directions to draw
#ifndef PIPETRAIN_CORE_DATA_MULTIWAY_CORPUS_H_
#define PIPETRAIN_CORE_DATA_MULTIWAY_CORPUS_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace pipetrain {

struct MultiwayCorpus {
  std::vector<std::string> languages;  // every code that occurs, sorted
  // A message: (index into `languages`, text), at most one text per language.
  using Message = std::vector<std::pair<int32_t, std::string>>;
  std::vector<Message> messages;

  // The index of `code` in `languages`, or -1.
  int32_t LanguageIndex(const std::string& code) const;
  // The distinct (src text, tgt text) pairs of a direction, in message
  // order. A direction can repeat a pair across messages that share a
  // sentence and differ in a third language; this is where that collapses.
  std::vector<std::pair<std::string, std::string>> Pairs(const std::string& src,
                                                         const std::string& tgt) const;
};

// Errors name the file and line.
absl::StatusOr<MultiwayCorpus> ReadMultiwayCorpus(const std::string& path);

struct CorpusDirection {
  std::string src, tgt;
  std::array<int64_t, 3> pairs{};  // train, dev, test
};
absl::StatusOr<std::vector<CorpusDirection>> ReadDirections(const std::string& path);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_MULTIWAY_CORPUS_H_
