// Corpus BLEU (Papineni et al., 2002) exactly as sacreBLEU 2.x computes it by
// default (sacrebleu.corpus_bleu, or the sacrebleu CLI without options):
// 13a tokenisation (tokenizer_13a.h) after stripping trailing whitespace,
// case-sensitive, n-grams up to 4, counts clipped by the most any one
// reference has, summed over the corpus; brevity penalty from the summed
// hypothesis length against the summed reference lengths, each sentence's
// reference length being the one closest to its hypothesis (the shorter on
// a tie); "exp" smoothing (mteval's: the k-th order with no match gets
// precision 1 / (2^k · total)); no effective order. docs/metrics.md.
#ifndef PIPETRAIN_CORE_METRICS_BLEU_H_
#define PIPETRAIN_CORE_METRICS_BLEU_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pipetrain {

inline constexpr int kBleuMaxOrder = 4;

struct BleuScore {
  double score = 0.0;                              // 0..100
  std::array<int64_t, kBleuMaxOrder> matches{};    // clipped matching n-grams, n = 1..4
  std::array<int64_t, kBleuMaxOrder> totals{};     // hypothesis n-grams
  std::array<double, kBleuMaxOrder> precisions{};  // percent, after smoothing
  double bp = 1.0;                                 // brevity penalty
  int64_t sys_len = 0;                             // hypothesis tokens
  int64_t ref_len = 0;                             // effective reference tokens

  // sys_len / ref_len, 0 when there is no reference token.
  double ratio() const;
  // sacreBLEU's line without the signature:
  // "BLEU = 34.12 65.3/40.1/27.0/18.9 (BP = 0.955 ratio = 0.956 hyp_len = 955 ref_len = 1000)"
  std::string Format() const;
};

// references[k][i] is the k-th reference of sentence i. Every reference
// stream should hold one line per hypothesis (CheckMetricInput in
// metric_input.h says so as an error); a stream shorter than the hypotheses
// counts as absent for the sentences it lacks (sacreBLEU's None), and lines
// beyond the last hypothesis are ignored. A sentence with no reference at
// all contributes its hypothesis n-grams and length with nothing to match.
BleuScore CorpusBleu(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_METRICS_BLEU_H_
