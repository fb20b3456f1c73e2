// Positions in the text of a spec file. Protobuf's tokenizer counts columns
// with tabs expanded to the next multiple of 8; editors and compilers count
// bytes. This maps one onto the other and quotes lines for error messages.
#ifndef PIPETRAIN_CORE_CONFIG_SOURCE_TEXT_H_
#define PIPETRAIN_CORE_CONFIG_SOURCE_TEXT_H_

#include <cstddef>
#include <string>
#include <vector>

namespace pipetrain::config_internal {

bool IsIdentifierChar(char c);

class SourceText {
 public:
  // Keeps a reference: `text` must outlive this object.
  explicit SourceText(const std::string& text);

  // Byte offset of protobuf's (0-based line, tab-expanded column).
  size_t Offset(int line, int column) const;

  // 0-based line of a byte offset.
  int LineOf(size_t offset) const;

  size_t LineStart(int line) const { return line_starts_[line]; }

  // The line without its newline; "" past the end.
  std::string Line(int line) const;

  // Start of the last whole-identifier occurrence of `token` before `limit`,
  // or npos.
  size_t FindTokenBefore(const std::string& token, size_t limit) const;

 private:
  const std::string& text_;
  std::vector<size_t> line_starts_;
};

}  // namespace pipetrain::config_internal

#endif  // PIPETRAIN_CORE_CONFIG_SOURCE_TEXT_H_
