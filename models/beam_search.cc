#include "models/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/data/batch.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

constexpr double kDead = -std::numeric_limits<double>::infinity();

// One way to extend a live hypothesis: its log-probability with `token`.
struct Candidate {
  double log_prob;
  int row;
  int32_t token;
};

// Ranking order; ties go to the lower row, then the lower token, so the
// search is deterministic and beam 1 picks what an argmax would.
bool Better(const Candidate& a, const Candidate& b) {
  if (a.log_prob != b.log_prob) return a.log_prob > b.log_prob;
  if (a.row != b.row) return a.row < b.row;
  return a.token < b.token;
}

struct LiveHypothesis {
  double log_prob = kDead;  // kDead: an unused row of the sentence's group
  std::vector<int32_t> tokens;
  int parent_row = 0;  // the row of this step it extends
  int32_t last_token = kEosId;
};

struct SentenceState {
  std::vector<LiveHypothesis> live;
  int finished = 0;
  bool has_best = false;
  Hypothesis best;
};

// Appends the candidates of one row: only </s> when it is forced, else the
// `want` most probable tokens other than <pad> and <s>. log p = logit − lse.
template <typename T>
absl::Status RowCandidates(const T* logits, int64_t vocab, int row, double prefix_log_prob,
                           bool force_eos, int want, std::vector<Candidate>* out) {
  double max = -std::numeric_limits<double>::infinity();
  for (int64_t v = 0; v < vocab; ++v) max = std::max(max, static_cast<double>(logits[v]));
  double sum = 0.0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(logits[v]) - max);
  const double lse = max + std::log(sum);
  if (!std::isfinite(lse)) {
    return absl::InternalError(absl::StrCat("decoding: the model's logits of row ", row,
                                            " are not finite (log-sum-exp ", lse, ")"));
  }
  if (force_eos) {
    out->push_back({prefix_log_prob + static_cast<double>(logits[kEosId]) - lse, row, kEosId});
    return absl::OkStatus();
  }
  // The `want` largest logits, kept sorted; on ties the lower id stays first.
  std::vector<std::pair<T, int32_t>> top;
  top.reserve(want + 1);
  for (int64_t v = kEosId; v < vocab; ++v) {
    const T value = logits[v];
    if (static_cast<int>(top.size()) == want && !(value > top.back().first)) continue;
    auto at = std::find_if(top.begin(), top.end(), [&](const auto& e) { return e.first < value; });
    top.insert(at, {value, static_cast<int32_t>(v)});
    if (static_cast<int>(top.size()) > want) top.pop_back();
  }
  for (const auto& [value, token] : top) {
    out->push_back({prefix_log_prob + static_cast<double>(value) - lse, row, token});
  }
  return absl::OkStatus();
}

absl::Status AppendCandidates(const Tensor& logits, int row, double prefix_log_prob, bool force_eos,
                              int want, std::vector<Candidate>* out) {
  const int64_t vocab = logits.dim(1);
  if (logits.dtype() == DType::kF64) {
    return RowCandidates(logits.data<double>() + row * vocab, vocab, row, prefix_log_prob,
                         force_eos, want, out);
  }
  return RowCandidates(logits.data<float>() + row * vocab, vocab, row, prefix_log_prob, force_eos,
                       want, out);
}

}  // namespace

double LengthPenalty(double alpha, int predicted_tokens) {
  return std::pow((5.0 + predicted_tokens) / 6.0, alpha);
}

absl::StatusOr<std::vector<Hypothesis>> BeamSearch(NextTokenScorer& scorer,
                                                   absl::Span<const int> max_content, int beam,
                                                   double length_penalty) {
  PT_CHECK_ARG(beam >= 1, "decoding: beam_size = ", beam, " must be at least 1");
  const int sentences = static_cast<int>(max_content.size());
  std::vector<SentenceState> states(sentences);
  std::vector<int> active;
  std::vector<int> parents;
  std::vector<int32_t> tokens;
  for (int s = 0; s < sentences; ++s) {
    PT_CHECK_ARG(max_content[s] >= 0, "decoding: sentence ", s, " may have ", max_content[s],
                 " target tokens");
    states[s].live.resize(beam);
    states[s].live[0].log_prob = 0.0;  // the start state; the other rows wait unused
    active.push_back(s);
    for (int k = 0; k < beam; ++k) {
      parents.push_back(s);
      tokens.push_back(kBosId);
    }
  }
  std::vector<Candidate> candidates;
  for (int step = 0; !active.empty(); ++step) {
    PT_ASSIGN_OR_RETURN(Tensor logits, scorer.Step(parents, tokens));
    const int64_t rows = static_cast<int64_t>(parents.size());
    if (logits.rank() != 2 || logits.dim(0) != rows ||
        (logits.dtype() != DType::kF32 && logits.dtype() != DType::kF64)) {
      return absl::InternalError(absl::StrCat("decoding: the scorer returned ",
                                              logits.DebugString(), " for ", rows, " rows"));
    }
    std::vector<int> next_active;
    parents.clear();
    tokens.clear();
    for (size_t group = 0; group < active.size(); ++group) {
      const int s = active[group];
      SentenceState& state = states[s];
      const int first_row = static_cast<int>(group) * beam;
      const bool force_eos = step >= max_content[s];
      candidates.clear();
      for (int k = 0; k < beam; ++k) {
        if (state.live[k].log_prob == kDead) continue;
        PT_RETURN_IF_ERROR(AppendCandidates(logits, first_row + k, state.live[k].log_prob,
                                            force_eos, beam + 1, &candidates));
      }
      std::sort(candidates.begin(), candidates.end(), Better);
      std::vector<LiveHypothesis> live;
      for (size_t rank = 0; rank < candidates.size(); ++rank) {
        const Candidate& c = candidates[rank];
        const LiveHypothesis& parent = state.live[c.row - first_row];
        if (c.token == kEosId) {
          if (rank >= static_cast<size_t>(beam)) continue;
          ++state.finished;
          const double score =
              c.log_prob /
              LengthPenalty(length_penalty, static_cast<int>(parent.tokens.size()) + 1);
          if (!state.has_best || score > state.best.score) {
            state.has_best = true;
            state.best.tokens = parent.tokens;
            state.best.log_prob = c.log_prob;
            state.best.score = score;
          }
        } else if (static_cast<int>(live.size()) < beam) {
          LiveHypothesis h;
          h.log_prob = c.log_prob;
          h.tokens = parent.tokens;
          h.tokens.push_back(c.token);
          h.parent_row = c.row;
          h.last_token = c.token;
          live.push_back(std::move(h));
        } else if (rank >= static_cast<size_t>(beam)) {
          break;
        }
      }
      bool done = state.finished >= beam || live.empty();
      if (!done && state.has_best) {
        // The best score a live hypothesis could still reach: its log_prob
        // (which only falls) over the largest lp of a length it may end at.
        const int shortest = step + 2, longest = max_content[s] + 1;
        const double lp = std::max(LengthPenalty(length_penalty, shortest),
                                   LengthPenalty(length_penalty, longest));
        double bound = kDead;
        for (const LiveHypothesis& h : live) bound = std::max(bound, h.log_prob / lp);
        done = state.best.score >= bound;
      }
      if (done) {
        state.live.clear();
        continue;
      }
      next_active.push_back(s);
      for (int k = 0; k < beam; ++k) {
        const bool used = k < static_cast<int>(live.size());
        parents.push_back(used ? live[k].parent_row : first_row);
        tokens.push_back(used ? live[k].last_token : kEosId);
      }
      live.resize(beam);  // unused rows stay kDead
      state.live = std::move(live);
    }
    active = std::move(next_active);
  }
  std::vector<Hypothesis> out;
  out.reserve(sentences);
  for (SentenceState& state : states) out.push_back(std::move(state.best));
  return out;
}

}  // namespace pipetrain
