#include "core/data/text_filters.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace pipetrain {
namespace {

// Decodes the code point at *pos and advances past it. Strict: no overlong
// forms, no surrogates, nothing above U+10FFFF.
bool NextCodePoint(std::string_view s, size_t* pos, char32_t* out) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(*pos);
  int extra;
  char32_t cp, min;
  if (lead < 0x80) {
    *out = lead;
    ++*pos;
    return true;
  } else if ((lead & 0xe0) == 0xc0) {
    extra = 1, cp = lead & 0x1f, min = 0x80;
  } else if ((lead & 0xf0) == 0xe0) {
    extra = 2, cp = lead & 0x0f, min = 0x800;
  } else if ((lead & 0xf8) == 0xf0) {
    extra = 3, cp = lead & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (*pos + extra >= s.size()) return false;
  for (int i = 1; i <= extra; ++i) {
    const unsigned char c = byte(*pos + i);
    if ((c & 0xc0) != 0x80) return false;
    cp = cp << 6 | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
  *out = cp;
  *pos += extra + 1;
  return true;
}

// Letters of any script, approximated without Unicode tables: every code
// point from U+00C0 up counts except the blocks of punctuation, symbols,
// combining marks, private use and emoji.
bool IsLetterLike(char32_t c) {
  if (c < 0x80) return std::isalpha(static_cast<int>(c)) != 0;
  if (c < 0xc0 || c == 0xd7 || c == 0xf7) return false;
  constexpr std::pair<char32_t, char32_t> kNotLetters[] = {
      {0x0300, 0x036f}, {0x2000, 0x2bff}, {0x3000, 0x303f},   {0xe000, 0xf8ff},
      {0xfe10, 0xfe1f}, {0xfe30, 0xfe4f}, {0xff00, 0xff20},   {0xff3b, 0xff40},
      {0xff5b, 0xff65}, {0xfff0, 0xffff}, {0x1f000, 0x1faff},
  };
  for (const auto& [lo, hi] : kNotLetters) {
    if (c >= lo && c <= hi) return false;
  }
  return true;
}

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Finds the placeholders of `text`; `rest` (when given) receives the text
// without them.
void ScanPlaceholders(std::string_view text, std::vector<std::string>* tokens, std::string* rest) {
  const auto at = [&](size_t i) { return i < text.size() ? text[i] : '\0'; };
  const auto digits = [&](size_t i) {
    while (std::isdigit(static_cast<unsigned char>(at(i)))) ++i;
    return i;
  };
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '%') {
      if (at(i + 1) == '%') {
        if (rest) rest->append("%");
        i += 2;
        continue;
      }
      size_t j = i + 1;
      if (at(j) == '(') {  // Python: %(name)s
        const size_t close = text.find(')', j);
        if (close != std::string_view::npos) {
          size_t k = close + 1;
          while (std::string_view("-+ #0").find(at(k)) != std::string_view::npos && at(k)) ++k;
          if (std::isalpha(static_cast<unsigned char>(at(k)))) {
            tokens->push_back(std::string(text.substr(i, close + 1 - i)) + at(k));
            i = k + 1;
            continue;
          }
        }
      }
      const size_t after_digits = digits(j);
      if (after_digits > j && at(after_digits) == '$') j = after_digits + 1;  // %1$s
      size_t k = j;
      while (std::string_view("-+#0'I").find(at(k)) != std::string_view::npos && at(k)) ++k;
      k = at(k) == '*' ? k + 1 : digits(k);
      if (at(k) == '.') k = at(k + 1) == '*' ? k + 2 : digits(k + 1);
      std::string length;
      for (std::string_view mod : {"hh", "ll", "h", "l", "L", "q", "j", "z", "t"}) {
        if (text.substr(std::min(k, text.size()), mod.size()) == mod) {
          length = std::string(mod);
          k += mod.size();
          break;
        }
      }
      if (std::string_view("diouxXeEfFgGaAcCsSpn").find(at(k)) != std::string_view::npos && at(k)) {
        tokens->push_back("%" + length + at(k));
        i = k + 1;
        continue;
      }
      if (after_digits > i + 1 && j == i + 1) {  // Qt: %1
        tokens->push_back(std::string(text.substr(i, after_digits - i)));
        i = after_digits;
        continue;
      }
    } else if (c == '{') {
      if (at(i + 1) == '{') {
        if (rest) rest->append("{");
        i += 2;
        continue;
      }
      size_t k = i + 1;
      while (std::isalnum(static_cast<unsigned char>(at(k))) || at(k) == '_') ++k;
      const size_t name_end = k;
      if (at(k) == ':' || at(k) == '!') {
        while (k < text.size() && text[k] != '}' && text[k] != '{') ++k;
      }
      if (at(k) == '}') {
        std::string token(text.substr(i, name_end - i));  // "{name"
        token.push_back('}');
        tokens->push_back(std::move(token));
        i = k + 1;
        continue;
      }
    }
    if (rest) rest->push_back(c);
    ++i;
  }
}

// The text as a reader would compare it: lower-case ASCII, accelerator
// marks dropped.
std::string Folded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '_' || c == '&') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace

const char* IssueName(TextIssue issue) {
  switch (issue) {
    case TextIssue::kNone:
      return "none";
    case TextIssue::kEmpty:
      return "empty";
    case TextIssue::kBadUtf8:
      return "bad_utf8";
    case TextIssue::kMultiLine:
      return "multi_line";
    case TextIssue::kControl:
      return "control_char";
    case TextIssue::kTooLong:
      return "too_long";
    case TextIssue::kFormatOnly:
      return "format_only";
  }
  return "unknown";
}

const char* IssueName(PairIssue issue) {
  switch (issue) {
    case PairIssue::kNone:
      return "none";
    case PairIssue::kUntranslated:
      return "untranslated";
    case PairIssue::kPlaceholders:
      return "placeholder_mismatch";
    case PairIssue::kLengthRatio:
      return "length_ratio";
  }
  return "unknown";
}

bool IsValidUtf8(std::string_view text) {
  size_t pos = 0;
  char32_t c;
  while (pos < text.size()) {
    if (!NextCodePoint(text, &pos, &c)) return false;
  }
  return true;
}

int64_t CountCodePoints(std::string_view text) {
  int64_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

std::string_view TrimText(std::string_view text) {
  while (!text.empty() && IsAsciiSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsAsciiSpace(text.back())) text.remove_suffix(1);
  return text;
}

TextIssue CheckText(std::string_view text, const TextFilterOptions& options) {
  if (text.empty()) return TextIssue::kEmpty;
  size_t pos = 0;
  char32_t c;
  bool multi_line = false, control = false;
  int64_t chars = 0;
  while (pos < text.size()) {
    if (!NextCodePoint(text, &pos, &c)) return TextIssue::kBadUtf8;
    ++chars;
    if (c == '\t' || c == '\n' || c == '\r') {
      multi_line = true;
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
      control = true;
    }
  }
  if (multi_line) return TextIssue::kMultiLine;
  if (control) return TextIssue::kControl;
  if (chars > options.max_chars) return TextIssue::kTooLong;
  std::vector<std::string> tokens;
  std::string rest;
  ScanPlaceholders(text, &tokens, &rest);
  pos = 0;
  while (pos < rest.size()) {
    // `rest` is `text` minus whole ASCII tokens, so it decodes.
    if (!NextCodePoint(rest, &pos, &c)) break;
    if (IsLetterLike(c)) return TextIssue::kNone;
  }
  return TextIssue::kFormatOnly;
}

PairIssue CheckPair(std::string_view source, std::string_view target,
                    const TextFilterOptions& options) {
  if (source == target || Folded(source) == Folded(target)) return PairIssue::kUntranslated;
  if (Placeholders(source) != Placeholders(target)) return PairIssue::kPlaceholders;
  const int64_t a = CountCodePoints(source), b = CountCodePoints(target);
  const int64_t longer = std::max(a, b), shorter = std::max<int64_t>(1, std::min(a, b));
  if (longer >= options.ratio_min_chars &&
      static_cast<double>(longer) > options.max_length_ratio * static_cast<double>(shorter)) {
    return PairIssue::kLengthRatio;
  }
  return PairIssue::kNone;
}

std::vector<std::string> Placeholders(std::string_view text) {
  std::vector<std::string> tokens;
  ScanPlaceholders(text, &tokens, nullptr);
  std::sort(tokens.begin(), tokens.end());
  return tokens;
}

}  // namespace pipetrain
