#include "core/config/text_enum_spelling.h"

#include "absl/strings/str_cat.h"
#include "core/config/enum_spelling.h"
#include "core/config/source_text.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace pipetrain::config_internal {
namespace {

namespace pb = google::protobuf;

// Protobuf's parser reports the same problems with better context.
class IgnoreErrors : public pb::io::ErrorCollector {
 public:
  void AddError(int, pb::io::ColumnNumber, const std::string&) override {}
};

struct Token {
  std::string text;
  pb::io::Tokenizer::TokenType type;
  int line;
  int column;
  size_t offset;  // in bytes
};

// The text-format tokens of `text`, tokenized as TextFormat::Parser does.
std::vector<Token> Tokenize(const std::string& text, const SourceText& source) {
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  IgnoreErrors errors;
  pb::io::Tokenizer tokenizer(&input, &errors);
  tokenizer.set_allow_f_after_float(true);
  tokenizer.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);
  tokenizer.set_require_space_after_number(false);
  std::vector<Token> tokens;
  while (tokenizer.Next()) {
    const pb::io::Tokenizer::Token& t = tokenizer.current();
    tokens.push_back({t.text, t.type, t.line, t.column, source.Offset(t.line, t.column)});
  }
  return tokens;
}

struct Edit {
  size_t offset;
  size_t length;
  std::string replacement;
};

}  // namespace

EnumSpellingsResolved ResolveEnumSpellings(const std::string& text, const pb::Descriptor* root) {
  EnumSpellingsResolved out;
  const SourceText source(text);
  const std::vector<Token> tokens = Tokenize(text, source);
  // The message type of every open block; null inside a block protobuf will
  // reject anyway (an unknown field) or that names no field (an extension).
  std::vector<const pb::Descriptor*> open = {root};
  std::vector<Edit> edits;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (t.text == "{" || t.text == "<") {
      open.push_back(nullptr);
      continue;
    }
    if (t.text == "}" || t.text == ">") {
      if (open.size() > 1) open.pop_back();
      continue;
    }
    if (t.type != pb::io::Tokenizer::TYPE_IDENTIFIER) continue;
    const pb::FieldDescriptor* field =
        open.back() == nullptr ? nullptr : open.back()->FindFieldByName(t.text);
    size_t j = i + 1;
    const bool colon = j < tokens.size() && tokens[j].text == ":";
    if (colon) ++j;
    if (j >= tokens.size()) break;
    if (tokens[j].text == "{" || tokens[j].text == "<") {  // `name {` or `name: {`
      open.push_back(field != nullptr ? field->message_type() : nullptr);
      i = j;
      continue;
    }
    if (!colon || field == nullptr || field->enum_type() == nullptr) continue;

    // The value as the user wrote it: a quoted string, or a run of word
    // characters (protobuf's tokenizer splits `1f1b` into several tokens).
    const Token& first = tokens[j];
    const size_t begin = first.offset;
    size_t end = begin;
    std::string word;
    bool quoted = false;
    if (text[begin] == '"' || text[begin] == '\'') {
      const size_t close = text.find(text[begin], begin + 1);
      const size_t line_end = text.find('\n', begin);
      if (close == std::string::npos || close > line_end) continue;
      word = text.substr(begin + 1, close - begin - 1);
      if (word.find('\\') != std::string::npos) continue;  // escapes: protobuf reports it
      end = close + 1;
      quoted = true;
    } else {
      while (end < text.size() && (IsIdentifierChar(text[end]) || text[end] == '-')) ++end;
      word = text.substr(begin, end - begin);
    }
    while (j + 1 < tokens.size() && tokens[j + 1].offset < end) ++j;
    i = j;
    if (word.empty()) continue;
    const pb::EnumValueDescriptor* value = FindEnumValue(field->enum_type(), word);
    if (value == nullptr) {
      if (quoted) out.unknown.push_back({first.line, first.column, word, field->name()});
      continue;
    }
    if (!quoted && word == value->name()) continue;
    std::string replacement = absl::StrCat(value->number());
    if (replacement.size() <= end - begin) {
      replacement.resize(end - begin, ' ');
    } else {
      replacement = value->name();  // too wide to pad: columns after it shift
    }
    edits.push_back({begin, end - begin, std::move(replacement)});
  }
  size_t copied = 0;
  for (const Edit& e : edits) {
    out.text.append(text, copied, e.offset - copied);
    out.text += e.replacement;
    copied = e.offset + e.length;
  }
  out.text.append(text, copied, std::string::npos);
  return out;
}

}  // namespace pipetrain::config_internal
