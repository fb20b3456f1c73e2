#include "core/metrics/tokenizer_13a.h"

#include <string>
#include <string_view>

#include "absl/strings/str_replace.h"
#include "core/metrics/metric_input.h"

namespace pipetrain {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsPeriodOrComma(char c) { return c == '.' || c == ','; }

// The symbols of rule 3 (the character class [{-~[-` -&(-+:-@/] of mteval).
bool IsSplitSymbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// The rules below are regular-expression substitutions in the reference: a
// pattern of two characters, matched left to right without overlap. They
// are done on bytes, which gives the same result on UTF-8: every byte the
// patterns name is ASCII, and "any character but a digit" spans a whole
// multi-byte character exactly when it spans its last byte (before a match)
// or its first byte (after one), neither of which can start another match.

// ([^0-9])([.,]) -> "\1 \2 "
std::string SplitAfterNonDigit(const std::string& in) {
  std::string out;
  out.reserve(in.size() + in.size() / 4);
  for (size_t i = 0; i < in.size();) {
    if (i + 1 < in.size() && !IsDigit(in[i]) && IsPeriodOrComma(in[i + 1])) {
      out += in[i];
      out += ' ';
      out += in[i + 1];
      out += ' ';
      i += 2;
    } else {
      out += in[i++];
    }
  }
  return out;
}

// ([.,])([^0-9]) -> " \1 \2"
std::string SplitBeforeNonDigit(const std::string& in) {
  std::string out;
  out.reserve(in.size() + in.size() / 4);
  for (size_t i = 0; i < in.size();) {
    if (i + 1 < in.size() && IsPeriodOrComma(in[i]) && !IsDigit(in[i + 1])) {
      out += ' ';
      out += in[i];
      out += ' ';
      out += in[i + 1];
      i += 2;
    } else {
      out += in[i++];
    }
  }
  return out;
}

// ([0-9])(-) -> "\1 \2 "
std::string SplitDashAfterDigit(const std::string& in) {
  std::string out;
  out.reserve(in.size() + in.size() / 4);
  for (size_t i = 0; i < in.size();) {
    if (i + 1 < in.size() && IsDigit(in[i]) && in[i + 1] == '-') {
      out += in[i];
      out += " - ";
      i += 2;
    } else {
      out += in[i++];
    }
  }
  return out;
}

}  // namespace

std::string Tokenize13a(std::string_view line) {
  std::string text(line);
  // Rule 1, in the reference's order: "<skipped>" first, so "-<skipped>\n" joins.
  text = absl::StrReplaceAll(text, {{"<skipped>", ""}});
  text = absl::StrReplaceAll(text, {{"-\n", ""}});
  text = absl::StrReplaceAll(text, {{"\n", " "}});
  // Rule 2: one entity at a time over the whole line (StrReplaceAll with all
  // four at once would not turn "&amp;lt;" into "<").
  if (text.find('&') != std::string::npos) {
    for (const auto& [entity, plain] : {std::pair<const char*, const char*>{"&quot;", "\""},
                                        {"&amp;", "&"},
                                        {"&lt;", "<"},
                                        {"&gt;", ">"}}) {
      text = absl::StrReplaceAll(text, {{entity, plain}});
    }
  }
  // The reference pads the line with a space on each side; the padding is
  // what lets a leading "." or a trailing "," match rules 4.
  std::string spaced;
  spaced.reserve(text.size() * 2 + 2);
  spaced += ' ';
  for (const char c : text) {
    if (IsSplitSymbol(c)) {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += c;
    }
  }
  spaced += ' ';
  spaced = SplitDashAfterDigit(SplitBeforeNonDigit(SplitAfterNonDigit(spaced)));
  std::string tokens;
  tokens.reserve(spaced.size());
  for (const std::string_view token : SplitOnSpace(spaced)) {
    if (!tokens.empty()) tokens += ' ';
    tokens.append(token);
  }
  return tokens;
}

}  // namespace pipetrain
