// Which texts and pairs are fit to train on. Shared by every corpus source
// (gettext catalogs, TSV files, parallel files), so that all of them drop
// the same things for the same reasons; docs/data.md lists the rules.
#ifndef PIPETRAIN_CORE_DATA_TEXT_FILTERS_H_
#define PIPETRAIN_CORE_DATA_TEXT_FILTERS_H_

#include <string>
#include <string_view>
#include <vector>

namespace pipetrain {

struct TextFilterOptions {
  int max_chars = 1000;           // code points, after trimming
  double max_length_ratio = 5.0;  // longer / shorter side, in code points...
  int ratio_min_chars = 20;       // ...checked once the longer side has this many
};

enum class TextIssue {
  kNone,
  kEmpty,
  kBadUtf8,
  kMultiLine,  // tab, newline or carriage return inside: help-text blocks, tables
  kControl,    // other C0/C1 control characters or DEL
  kTooLong,
  kFormatOnly,  // nothing but placeholders, digits, punctuation and symbols
};

enum class PairIssue {
  kNone,
  kUntranslated,  // the same text, up to case and accelerator marks (_File, &File)
  kPlaceholders,  // the two sides use different placeholders: a stale translation
  kLengthRatio,
};

// "empty", "bad_utf8", ... as used in stats.tsv.
const char* IssueName(TextIssue issue);
const char* IssueName(PairIssue issue);

bool IsValidUtf8(std::string_view text);
// Code points of valid UTF-8.
int64_t CountCodePoints(std::string_view text);
// Without leading and trailing ASCII whitespace (gettext messages often end
// in "\n"; their translations mirror it).
std::string_view TrimText(std::string_view text);

// Checks one trimmed text.
TextIssue CheckText(std::string_view text, const TextFilterOptions& options);
// Checks a pair of texts that each passed CheckText.
PairIssue CheckPair(std::string_view source, std::string_view target,
                    const TextFilterOptions& options);

// The placeholders of a text, sorted: printf conversions without position,
// flags or width ("%s", "%ld"; "%1$s" is "%s"), Python's "%(name)s", Qt's
// "%1", brace fields ("{0}", "{name}"). "%%" and "{{" are literal.
std::vector<std::string> Placeholders(std::string_view text);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_TEXT_FILTERS_H_
