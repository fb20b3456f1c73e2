#include "core/metrics/metric_input.h"

#include "absl/strings/str_cat.h"

namespace pipetrain {

bool IsPythonSpace(char32_t c) {
  if (c <= 0x20) return (c >= 0x09 && c <= 0x0D) || c >= 0x1C;
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

Utf8Char DecodeUtf8At(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) return {lead, 1};
  const Utf8Char invalid{static_cast<char32_t>(0xDC00 + lead), 1};
  size_t length;
  char32_t value, min_value;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, value = lead & 0x1F, min_value = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, value = lead & 0x0F, min_value = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, value = lead & 0x07, min_value = 0x10000;
  } else {
    return invalid;
  }
  if (pos + length > text.size()) return invalid;
  for (size_t i = 1; i < length; ++i) {
    const unsigned char next = byte(pos + i);
    if ((next & 0xC0) != 0x80) return invalid;
    value = (value << 6) | (next & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
  if (value < min_value || (value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
    return invalid;
  }
  return {value, length};
}

std::vector<size_t> CharStarts(std::string_view text) {
  std::vector<size_t> starts;
  starts.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size(); pos += DecodeUtf8At(text, pos).length) {
    starts.push_back(pos);
  }
  starts.push_back(text.size());
  return starts;
}

std::vector<std::string_view> SplitOnSpace(std::string_view text) {
  std::vector<std::string_view> pieces;
  size_t piece_start = 0;
  bool in_piece = false;
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Char ch = DecodeUtf8At(text, pos);
    if (IsPythonSpace(ch.code_point)) {
      if (in_piece) pieces.push_back(text.substr(piece_start, pos - piece_start));
      in_piece = false;
    } else if (!in_piece) {
      piece_start = pos;
      in_piece = true;
    }
    pos += ch.length;
  }
  if (in_piece) pieces.push_back(text.substr(piece_start));
  return pieces;
}

std::string_view StripTrailingSpace(std::string_view text) {
  size_t end = 0;  // one past the last non-space character
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Char ch = DecodeUtf8At(text, pos);
    pos += ch.length;
    if (!IsPythonSpace(ch.code_point)) end = pos;
  }
  return text.substr(0, end);
}

absl::Status CheckMetricInput(const std::vector<std::string>& hypotheses,
                              const std::vector<std::vector<std::string>>& references,
                              const std::vector<std::string>& names) {
  const auto name = [&](size_t i, const std::string& fallback) {
    return i < names.size() ? names[i] : fallback;
  };
  if (references.empty()) {
    return absl::InvalidArgumentError("no reference given: pass at least one reference file");
  }
  for (size_t k = 0; k < references.size(); ++k) {
    if (references[k].size() != hypotheses.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          name(0, "the hypotheses"), " has ", hypotheses.size(), " lines but ",
          name(k + 1, absl::StrCat("reference ", k + 1)), " has ", references[k].size(),
          " lines; every reference must have one line per hypothesis line"));
    }
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
