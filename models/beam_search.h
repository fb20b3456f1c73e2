// Greedy and beam-search decoding, independent of how the model computes:
// the search asks a NextTokenScorer for the logits of the token after every
// live hypothesis and keeps the best ones.
//
// Scores. A hypothesis y (its content tokens and the closing </s>) has
//   log_prob = Σ_t log p(y_t | y_<t, source)   (the </s> included)
//   score    = log_prob / lp(|y|),  lp(n) = ((5 + n) / 6)^α          (GNMT)
// with |y| the number of predicted tokens, </s> included, and α =
// DecodeOptions::length_penalty; α = 0 ranks by log_prob alone, larger α
// favours longer output. The probabilities are those of the full softmax;
// <pad> and <s> are never proposed, and </s> is forced once a hypothesis has
// its maximum number of content tokens.
//
// The search (the usual one, as in fairseq): every sentence keeps `beam`
// live hypotheses. At each step the best candidates of all its live ones are
// ranked; a candidate ending in </s> that ranks among the first `beam` is
// finished, the best `beam` others stay live. A sentence stops when it has
// `beam` finished hypotheses, or when no live one can still beat its best
// finished one (log-probabilities only fall, so a live hypothesis can at best
// end at its current log_prob divided by the largest lp it may reach). It
// returns its best finished hypothesis. With beam = 1 this is greedy
// decoding: the most probable token each step, stopping at </s>.
#ifndef PIPETRAIN_MODELS_BEAM_SEARCH_H_
#define PIPETRAIN_MODELS_BEAM_SEARCH_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"

namespace pipetrain {

struct DecodeOptions {
  int beam_size = 1;            // 1 = greedy
  double length_penalty = 1.0;  // α of lp(n) = ((5 + n) / 6)^α; 0 = none
  // A hypothesis has at most a·(source tokens) + b content tokens, and no
  // more than the model's max_positions leave room for.
  int max_len_a = 1;
  int max_len_b = 20;
  // The optimizer step the parameters come from: BranchNorm's schedule is
  // evaluated there. -1: training is over (the schedule's end).
  int64_t training_step = -1;
  // true: keys and values of earlier target positions are cached, each step
  // computes one position. false: the decoder recomputes the whole prefix
  // every step (the plain reference path; slower, same results).
  bool incremental = true;
  // Sentences decoded together (each takes beam_size rows); bounds memory.
  int batch_sentences = 64;
};

struct Hypothesis {
  std::vector<int32_t> tokens;  // content ids, without <s> and </s>
  double score = 0.0;           // log_prob / lp(tokens + 1)
  double log_prob = 0.0;        // Σ log p of the tokens and the </s>
};

// lp(n) = ((5 + n) / 6)^alpha.
double LengthPenalty(double alpha, int predicted_tokens);

// Computes, for a set of growing token prefixes (rows), the logits of the
// next token. Rows come in groups of `beam` consecutive rows, one group per
// sentence still being searched, in increasing sentence order.
class NextTokenScorer {
 public:
  virtual ~NextTokenScorer() = default;
  // Appends tokens[r] to the prefix that row parents[r] of the previous call
  // had, and returns the logits [rows, V] (f32 or f64) of the token after
  // each new prefix. On the first call the prefixes are the sentences'
  // start states (the decoder's <s> comes as the first token) and
  // parents[r] is the sentence index. Row r's parent always belongs to the
  // same sentence.
  virtual absl::StatusOr<Tensor> Step(absl::Span<const int> parents,
                                      absl::Span<const int32_t> tokens) = 0;
};

// Searches every sentence s (max_content[s] = its most content tokens) and
// returns the best hypothesis of each.
absl::StatusOr<std::vector<Hypothesis>> BeamSearch(NextTokenScorer& scorer,
                                                   absl::Span<const int> max_content, int beam,
                                                   double length_penalty);

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_BEAM_SEARCH_H_
