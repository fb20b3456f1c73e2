#include "core/metrics/chrf.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/metrics/metric_input.h"

namespace pipetrain {
namespace {

using Counts = std::unordered_map<std::string_view, int64_t>;

bool IsAsciiPunctuation(char32_t c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// One side of a sentence pair cut into what chrF counts. The count maps
// hold views into `chars` and `words`, so an object is filled in place and
// never copied or moved afterwards.
struct SentenceNgrams {
  std::string chars;           // the text without whitespace
  std::string words;           // the chrF++ words, joined by single spaces
  std::vector<Counts> orders;  // char orders 1..C, then word orders 1..W
};

// Words for chrF++: whitespace-separated, and a word of two or more
// characters that ends in ASCII punctuation loses that last mark to a word
// of its own, or else one that starts with it loses the first ("(hi)"
// becomes "(hi" and ")", as in the reference).
std::vector<std::string_view> ChrfWords(std::string_view text) {
  std::vector<std::string_view> words;
  for (const std::string_view word : SplitOnSpace(text)) {
    const std::vector<size_t> starts = CharStarts(word);
    const size_t n_chars = starts.size() - 1;
    if (n_chars == 1) {
      words.push_back(word);
      continue;
    }
    const size_t last = starts[n_chars - 1];
    if (IsAsciiPunctuation(DecodeUtf8At(word, last).code_point)) {
      words.push_back(word.substr(0, last));
      words.push_back(word.substr(last));
    } else if (IsAsciiPunctuation(DecodeUtf8At(word, 0).code_point)) {
      words.push_back(word.substr(0, starts[1]));
      words.push_back(word.substr(starts[1]));
    } else {
      words.push_back(word);
    }
  }
  return words;
}

// Counts of every run of 1..max_order units of `text`, unit i being
// text[starts[i], ends[i]); a run is the substring from its first unit's
// start to its last unit's end, so units must be laid out in order.
void CountRuns(std::string_view text, const std::vector<size_t>& starts,
               const std::vector<size_t>& ends, int max_order, std::vector<Counts>* out) {
  const size_t n_units = starts.size();
  for (int n = 1; n <= max_order; ++n) {
    Counts counts;
    for (size_t i = 0; i + n <= n_units; ++i) {
      ++counts[text.substr(starts[i], ends[i + n - 1] - starts[i])];
    }
    out->push_back(std::move(counts));
  }
}

void Extract(std::string_view text, const ChrfOptions& options, SentenceNgrams* out) {
  for (const std::string_view piece : SplitOnSpace(text)) out->chars.append(piece);
  std::vector<size_t> starts = CharStarts(out->chars);
  std::vector<size_t> ends(starts.begin() + 1, starts.end());
  starts.pop_back();
  CountRuns(out->chars, starts, ends, options.char_order, &out->orders);
  if (options.word_order > 0) {
    // Words joined by single spaces: a run of n words is one substring,
    // the same key sacreBLEU builds with ' '.join.
    starts.clear();
    ends.clear();
    for (const std::string_view word : ChrfWords(text)) {
      if (!starts.empty()) out->words += ' ';
      starts.push_back(out->words.size());
      out->words.append(word);
      ends.push_back(out->words.size());
    }
    CountRuns(out->words, starts, ends, options.word_order, &out->orders);
  }
}

// [hyp, ref, match] of one order; hypothesis n-grams are not counted when
// the reference has none of this order (as in the reference).
ChrfOrderStats MatchOrder(const Counts& hyp, const Counts& ref) {
  ChrfOrderStats s;
  for (const auto& [ngram, count] : hyp) {
    s.hyp += count;
    const auto it = ref.find(ngram);
    if (it != ref.end()) s.match += std::min(count, it->second);
  }
  if (ref.empty()) s.hyp = 0;
  for (const auto& [ngram, count] : ref) s.ref += count;
  return s;
}

// sacreBLEU's _compute_f_score, operation for operation.
double FScore(const std::vector<ChrfOrderStats>& stats, const ChrfOptions& options) {
  constexpr double kEps = 1e-16;
  const double factor = options.beta * options.beta;
  double eps_score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
  int effective_order = 0;
  for (const ChrfOrderStats& s : stats) {
    const double prec =
        s.hyp > 0 ? static_cast<double>(s.match) / static_cast<double>(s.hyp) : kEps;
    const double rec = s.ref > 0 ? static_cast<double>(s.match) / static_cast<double>(s.ref) : kEps;
    const double denom = factor * prec + rec;
    eps_score += denom > 0 ? ((1 + factor) * prec * rec / denom) : kEps;
    if (s.hyp > 0 && s.ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (options.eps_smoothing) return 100 * eps_score / static_cast<double>(stats.size());
  if (effective_order == 0) {
    avg_prec = avg_rec = 0.0;
  } else {
    avg_prec /= effective_order;
    avg_rec /= effective_order;
  }
  if (avg_prec + avg_rec == 0.0) return 0.0;
  double score = (1 + factor) * avg_prec * avg_rec;
  score /= (factor * avg_prec) + avg_rec;
  return 100 * score;
}

}  // namespace

std::string ChrfScore::Name() const {
  // sacreBLEU prints beta as the integer it is by default.
  const std::string beta_text = beta == static_cast<int64_t>(beta)
                                    ? absl::StrCat(static_cast<int64_t>(beta))
                                    : absl::StrCat(beta);
  return absl::StrCat("chrF", beta_text, std::string(static_cast<size_t>(word_order), '+'));
}

std::string ChrfScore::Format() const { return absl::StrFormat("%s = %.2f", Name(), score); }

ChrfScore CorpusChrf(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references, int word_order) {
  ChrfOptions options;
  options.word_order = word_order;
  return CorpusChrf(hypotheses, references, options);
}

ChrfScore CorpusChrf(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references,
                     const ChrfOptions& options) {
  ChrfScore result;
  result.beta = options.beta;
  result.char_order = options.char_order;
  result.word_order = options.word_order;
  const size_t n_orders = static_cast<size_t>(options.char_order + options.word_order);
  result.stats.assign(n_orders, ChrfOrderStats{});
  std::vector<ChrfOrderStats> sentence;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    SentenceNgrams hyp;
    Extract(hypotheses[i], options, &hyp);
    std::vector<ChrfOrderStats> best;
    double best_f = -1.0;
    for (const auto& stream : references) {
      if (i >= stream.size()) continue;
      SentenceNgrams ref;
      Extract(stream[i], options, &ref);
      sentence.clear();
      for (size_t n = 0; n < n_orders; ++n)
        sentence.push_back(MatchOrder(hyp.orders[n], ref.orders[n]));
      const double f = FScore(sentence, options);
      if (f > best_f) {
        best_f = f;
        best = sentence;
      }
    }
    for (size_t n = 0; n < best.size(); ++n) {
      result.stats[n].hyp += best[n].hyp;
      result.stats[n].ref += best[n].ref;
      result.stats[n].match += best[n].match;
    }
  }
  result.score = FScore(result.stats, options);
  return result;
}

}  // namespace pipetrain
