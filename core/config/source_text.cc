#include "core/config/source_text.h"

#include <algorithm>

namespace pipetrain::config_internal {

bool IsIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

SourceText::SourceText(const std::string& text) : text_(text) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') line_starts_.push_back(i + 1);
  }
}

size_t SourceText::Offset(int line, int column) const {
  if (line < 0) return 0;
  if (static_cast<size_t>(line) >= line_starts_.size()) return text_.size();
  size_t offset = line_starts_[line];
  int visual = 0;
  while (offset < text_.size() && text_[offset] != '\n' && visual < column) {
    visual = text_[offset] == '\t' ? (visual / 8 + 1) * 8 : visual + 1;
    ++offset;
  }
  return offset;
}

int SourceText::LineOf(size_t offset) const {
  int line = 0;
  while (static_cast<size_t>(line + 1) < line_starts_.size() && line_starts_[line + 1] <= offset) {
    ++line;
  }
  return line;
}

std::string SourceText::Line(int line) const {
  if (static_cast<size_t>(line) >= line_starts_.size()) return "";
  const size_t start = line_starts_[line];
  const size_t end = text_.find('\n', start);
  return text_.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

size_t SourceText::FindTokenBefore(const std::string& token, size_t limit) const {
  if (token.empty()) return std::string::npos;
  size_t end = std::min(limit, text_.size());
  while (end >= token.size()) {
    const size_t at = text_.rfind(token, end - token.size());
    if (at == std::string::npos) return std::string::npos;
    const bool starts = at == 0 || !IsIdentifierChar(text_[at - 1]);
    const size_t after = at + token.size();
    const bool ends = after >= text_.size() || !IsIdentifierChar(text_[after]);
    if (starts && ends) return at;
    if (at == 0) return std::string::npos;
    end = at + token.size() - 1;
  }
  return std::string::npos;
}

}  // namespace pipetrain::config_internal
