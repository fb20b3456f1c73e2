// `pipetrain data vocab`: the subword vocabulary of a corpus that
// `pipetrain data build` wrote.
//
// A seeded, temperature-balanced sample of the train sentences (languages
// weighted p ∝ n^(1/T) by their distinct train sentences, sentences uniform
// within a language) is written to a temporary file and handed to Debian's
// `spm_train` (run as a subprocess, never linked): a unigram model with
// pipetrain's special ids (<pad> 0, <s> 1, </s> 2, <unk> 3, core/data/batch.h),
// one user-defined <2xx> piece per language of DIR/languages.txt, byte
// fallback, and the identity normalization without whitespace collapsing, so
// that decoding an encoded sentence gives the sentence back (docs/data.md,
// "Vocabulary"). Output: DIR/spm.model, DIR/spm.vocab (written under temporary
// names and renamed), spm_train's log in DIR/spm_train.log.
#ifndef PIPETRAIN_CORE_DATA_VOCAB_BUILDER_H_
#define PIPETRAIN_CORE_DATA_VOCAB_BUILDER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace pipetrain {

struct VocabOptions {
  int32_t vocab_size = 8000;
  // Sampling temperature over languages: 1 follows the data, larger values
  // flatten towards uniform.
  double temperature = 5.0;
  // Sentences handed to spm_train (fewer when the corpus has fewer distinct
  // train sentences).
  int64_t max_sentences = 300000;
  uint64_t seed = 1;
  // The trainer program: a path, or a name looked up in PATH.
  std::string spm_train = "spm_train";
  // spm_train's threads; 0: all cores.
  int32_t num_threads = 0;
  // Languages to sample and to give a tag, as languages.txt names them;
  // empty: every language of the corpus. A model trained on a few languages
  // of a large corpus spends its pieces on them alone.
  std::vector<std::string> languages;
  // Where spm.model, spm.vocab and spm_train.log go; empty: the corpus directory.
  std::string out_dir;
};

struct VocabSummary {
  int64_t languages = 0;           // with train sentences
  int64_t language_tags = 0;       // <2xx> pieces, one per line of languages.txt
  int64_t distinct_sentences = 0;  // train sentences, distinct per language
  int64_t sampled_sentences = 0;   // lines given to spm_train
  // (language, sampled lines, distinct train sentences), most sampled first.
  struct LanguageSample {
    std::string language;
    int64_t sampled = 0;
    int64_t available = 0;
  };
  std::vector<LanguageSample> per_language;
  int32_t vocab_size = 0;
  double read_seconds = 0, train_seconds = 0, total_seconds = 0;
  std::string model_path, vocab_path, log_path;
};

absl::StatusOr<VocabSummary> BuildVocabulary(const std::string& corpus_dir,
                                             const VocabOptions& options);

// How many of `total` sample lines each language gets: shares proportional
// to counts[i]^(1/temperature) (0 for an empty language), rounded down, the
// rest handed out by largest remainder (ties to the lower index). The result
// sums to `total` when some count is positive.
std::vector<int64_t> TemperatureQuotas(const std::vector<int64_t>& counts, double temperature,
                                       int64_t total);

// The path of a SentencePiece command-line tool (spm_train, spm_encode, ...):
// `name` itself when it contains a '/', else the first executable of that
// name in PATH. Not found: an error that says to install Debian's
// sentencepiece package.
absl::StatusOr<std::string> FindSentencePieceTool(const std::string& name);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_VOCAB_BUILDER_H_
