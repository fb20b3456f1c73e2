// chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacreBLEU 2.x
// computes them by default (sacrebleu.corpus_chrf, CLI `-m chrf`):
// character n-grams of orders 1..6 over code points with all whitespace
// removed, case-sensitive, beta = 2; chrF++ adds word unigrams and bigrams
// (words split on whitespace, one leading or trailing ASCII punctuation mark
// split off). Per sentence, the statistics of the reference with the best
// sentence F-score are kept (the first on a tie); they are summed over the
// corpus, and the score is the F-beta of the precision and recall averaged
// over the orders that have both hypothesis and reference n-grams
// ("effective order", sacreBLEU's default; eps_smoothing is its option for
// the chrF++.py/Moses/NLTK formula: the F-scores of all orders averaged,
// 1e-16 standing in for an undefined precision or recall). docs/metrics.md.
#ifndef PIPETRAIN_CORE_METRICS_CHRF_H_
#define PIPETRAIN_CORE_METRICS_CHRF_H_

#include <cstdint>
#include <string>
#include <vector>

namespace pipetrain {

struct ChrfOptions {
  int char_order = 6;
  int word_order = 0;  // 2 for chrF++
  double beta = 2.0;
  bool eps_smoothing = false;
};

// Summed counts of one n-gram order (character orders first, then words).
struct ChrfOrderStats {
  int64_t hyp = 0;    // hypothesis n-grams (0 for a sentence whose reference has none)
  int64_t ref = 0;    // reference n-grams
  int64_t match = 0;  // clipped matches
};

struct ChrfScore {
  double score = 0.0;  // 0..100
  double beta = 2.0;
  int char_order = 6;
  int word_order = 0;
  std::vector<ChrfOrderStats> stats;  // char_order + word_order entries

  // "chrF2", or "chrF2++" with word order 2, as sacreBLEU names it.
  std::string Name() const;
  // "chrF2 = 55.31"
  std::string Format() const;
};

// references[k][i] is the k-th reference of sentence i; streams shorter than
// the hypotheses count as absent for the sentences they lack, as in
// CorpusBleu. A sentence with no reference adds nothing.
ChrfScore CorpusChrf(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references, int word_order = 0);
ChrfScore CorpusChrf(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references,
                     const ChrfOptions& options);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_METRICS_CHRF_H_
