// Text handling that BLEU and chrF share, defined the way sacreBLEU (a Python
// program) sees text, so that the scores agree with it to the last digit:
// "whitespace" is what Python's str.isspace() accepts (NBSP, U+3000 and
// friends, not just ASCII), and a "character" is a Unicode code point.
#ifndef PIPETRAIN_CORE_METRICS_METRIC_INPUT_H_
#define PIPETRAIN_CORE_METRICS_METRIC_INPUT_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace pipetrain {

// Python's str.isspace() for one code point (Unicode 14, Python 3.11):
// U+0009..000D, U+001C..0020, U+0085, U+00A0, U+1680, U+2000..200A, U+2028,
// U+2029, U+202F, U+205F, U+3000.
bool IsPythonSpace(char32_t code_point);

// One code point of UTF-8 starting at text[pos]: its value and byte length.
// A byte that does not start a valid sequence counts as one character of its
// own (value 0xDC00 + byte, as Python's surrogateescape would name it), so
// malformed input still gets a defined score instead of an error.
struct Utf8Char {
  char32_t code_point;
  size_t length;
};
Utf8Char DecodeUtf8At(std::string_view text, size_t pos);

// The byte offset of every character, plus text.size() at the end: character
// i is text.substr(starts[i], starts[i + 1] - starts[i]).
std::vector<size_t> CharStarts(std::string_view text);

// Python's str.split() with no argument: runs of whitespace separate, no
// empty pieces. The views point into `text`.
std::vector<std::string_view> SplitOnSpace(std::string_view text);

// Python's str.rstrip() with no argument.
std::string_view StripTrailingSpace(std::string_view text);

// What CorpusBleu/CorpusChrf expect, as an error for callers that read the
// texts from files: at least one reference stream, and every stream as long
// as the hypotheses. `names` (optional, same order as hypotheses then
// references) names the sources in the message.
absl::Status CheckMetricInput(const std::vector<std::string>& hypotheses,
                              const std::vector<std::vector<std::string>>& references,
                              const std::vector<std::string>& names = {});

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_METRICS_METRIC_INPUT_H_
