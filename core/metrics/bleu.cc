#include "core/metrics/bleu.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/metrics/metric_input.h"
#include "core/metrics/tokenizer_13a.h"

namespace pipetrain {
namespace {

// The n-grams of one tokenised line, order by order. Tokens are separated by
// single spaces, so an n-gram is the substring from its first token to its
// last, and the keys can be views into the line.
using NgramCounts = std::array<std::unordered_map<std::string_view, int64_t>, kBleuMaxOrder>;

struct TokenizedLine {
  std::string text;                  // 13a tokens joined by single spaces
  std::vector<size_t> starts, ends;  // byte span of each token
};

TokenizedLine TokenizeForBleu(const std::string& line) {
  TokenizedLine out;
  out.text = Tokenize13a(StripTrailingSpace(line));
  size_t pos = 0;
  while (pos < out.text.size()) {
    size_t end = out.text.find(' ', pos);
    if (end == std::string::npos) end = out.text.size();
    out.starts.push_back(pos);
    out.ends.push_back(end);
    pos = end + 1;
  }
  return out;
}

NgramCounts CountNgrams(const TokenizedLine& line) {
  NgramCounts counts;
  const size_t n_tokens = line.starts.size();
  for (int n = 1; n <= kBleuMaxOrder; ++n) {
    for (size_t i = 0; i + n <= n_tokens; ++i) {
      const size_t begin = line.starts[i], end = line.ends[i + n - 1];
      ++counts[n - 1][std::string_view(line.text).substr(begin, end - begin)];
    }
  }
  return counts;
}

// The reference length that the brevity penalty uses for one sentence: the
// one closest to the hypothesis length, the shorter of two equally close.
int64_t ClosestReferenceLength(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
  int64_t closest_diff = -1, closest_len = 0;
  for (const int64_t ref_len : ref_lens) {
    const int64_t diff = std::llabs(hyp_len - ref_len);
    if (closest_diff == -1 || diff < closest_diff ||
        (diff == closest_diff && ref_len < closest_len)) {
      closest_diff = diff;
      closest_len = ref_len;
    }
  }
  return closest_len;
}

// sacreBLEU's floor for log(0), which makes exp(mean) exactly 0.
double LogOrFloor(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

// From the summed statistics to the score, in sacreBLEU's order of
// operations so that the doubles come out the same.
void ComputeScore(BleuScore* s) {
  s->bp = 1.0;
  if (s->sys_len < s->ref_len) {
    s->bp = s->sys_len > 0
                ? std::exp(1.0 - static_cast<double>(s->ref_len) / static_cast<double>(s->sys_len))
                : 0.0;
  }
  s->precisions.fill(0.0);
  s->score = 0.0;
  bool any_match = false;
  for (const int64_t m : s->matches) any_match = any_match || m != 0;
  if (!any_match) return;

  double smooth = 1.0;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    // No hypothesis n-grams of this order (every line shorter than n): the
    // reference stops here and leaves this and the higher precisions at 0,
    // which zeroes the score.
    if (s->totals[n] == 0) break;
    if (s->matches[n] == 0) {
      smooth *= 2.0;
      s->precisions[n] = 100.0 / (smooth * static_cast<double>(s->totals[n]));
    } else {
      s->precisions[n] =
          100.0 * static_cast<double>(s->matches[n]) / static_cast<double>(s->totals[n]);
    }
  }
  double log_sum = 0.0;
  for (const double p : s->precisions) log_sum += LogOrFloor(p);
  s->score = s->bp * std::exp(log_sum / kBleuMaxOrder);
}

}  // namespace

double BleuScore::ratio() const {
  return ref_len != 0 ? static_cast<double>(sys_len) / static_cast<double>(ref_len) : 0.0;
}

std::string BleuScore::Format() const {
  return absl::StrFormat(
      "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %d ref_len = %d)", score,
      precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio(), sys_len, ref_len);
}

BleuScore CorpusBleu(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references) {
  BleuScore result;
  std::vector<TokenizedLine> refs;
  std::vector<int64_t> ref_lens;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    refs.clear();
    ref_lens.clear();
    for (const auto& stream : references) {
      if (i < stream.size()) refs.push_back(TokenizeForBleu(stream[i]));
    }
    // The most often each n-gram occurs in any one reference: the clip.
    NgramCounts clip;
    for (const TokenizedLine& ref : refs) {
      ref_lens.push_back(static_cast<int64_t>(ref.starts.size()));
      NgramCounts counts = CountNgrams(ref);
      for (int n = 0; n < kBleuMaxOrder; ++n) {
        for (const auto& [ngram, count] : counts[n]) {
          int64_t& kept = clip[n][ngram];
          if (count > kept) kept = count;
        }
      }
    }
    const TokenizedLine hyp = TokenizeForBleu(hypotheses[i]);
    const int64_t hyp_len = static_cast<int64_t>(hyp.starts.size());
    result.sys_len += hyp_len;
    result.ref_len += ClosestReferenceLength(hyp_len, ref_lens);
    const NgramCounts hyp_counts = CountNgrams(hyp);
    for (int n = 0; n < kBleuMaxOrder; ++n) {
      for (const auto& [ngram, count] : hyp_counts[n]) {
        result.totals[n] += count;
        const auto it = clip[n].find(ngram);
        if (it != clip[n].end()) result.matches[n] += std::min(count, it->second);
      }
    }
  }
  ComputeScore(&result);
  return result;
}

}  // namespace pipetrain
