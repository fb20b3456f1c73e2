// Text-format parsing of spec and config files. Protobuf's own messages say
// what went wrong but point at the token after the culprit with 0-based,
// tab-expanded columns; this file moves the position onto the culprit, makes it
// 1-based in bytes, quotes the line, and adds a hint on how to fix it. Enum
// values may be written by their spelling (text_enum_spelling.h).
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/config/enum_spelling.h"
#include "core/config/proto_names.h"
#include "core/config/source_text.h"
#include "core/config/spec_loader.h"
#include "core/config/text_enum_spelling.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace pipetrain {
namespace {

namespace pb = google::protobuf;
using config_internal::DidYouMean;
using config_internal::FieldNameList;
using config_internal::FieldNames;
using config_internal::SourceText;

struct ParseError {
  int line = 0;    // 0-based
  int column = 0;  // 0-based, tabs advance to the next multiple of 8 (protobuf's rule)
  std::string message;
};

class CollectingErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    errors_.push_back({line, column, message});
  }
  // Warnings (deprecated fields and the like) do not stop a run.
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}

  const std::vector<ParseError>& errors() const { return errors_; }

 private:
  std::vector<ParseError> errors_;
};

// The text between the first pair of double quotes after `prefix`, or "".
std::string QuotedAfter(const std::string& message, const std::string& prefix) {
  const size_t at = message.find(prefix);
  if (at == std::string::npos) return "";
  const size_t open = message.find('"', at + prefix.size());
  if (open == std::string::npos) return "";
  const size_t close = message.find('"', open + 1);
  if (close == std::string::npos) return "";
  return message.substr(open + 1, close - open - 1);
}

// Every field named `field_name` reachable from `root`, for naming the enum an
// unknown value was meant for (protobuf's message gives only the field name).
void FindFieldsNamed(const pb::Descriptor* message, const std::string& field_name,
                     std::set<const pb::Descriptor*>* seen,
                     std::vector<const pb::FieldDescriptor*>* found) {
  if (!seen->insert(message).second) return;
  for (int i = 0; i < message->field_count(); ++i) {
    const pb::FieldDescriptor* field = message->field(i);
    if (field->name() == field_name) found->push_back(field);
    if (field->message_type() != nullptr) {
      FindFieldsNamed(field->message_type(), field_name, seen, found);
    }
  }
}

std::string Hint(const ParseError& error, const pb::Descriptor* root) {
  const std::string& m = error.message;
  if (absl::StrContains(m, "has no field named")) {
    const std::string type_name = QuotedAfter(m, "Message type");
    const std::string field = QuotedAfter(m, "has no field named");
    const pb::Descriptor* type =
        pb::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
    if (type == nullptr) return "check the field name against docs/spec-reference.md";
    return absl::StrCat(type->name(), " has no field '", field, "'",
                        DidYouMean(field, FieldNames(type)),
                        "; valid fields: ", FieldNameList(type));
  }
  if (absl::StrContains(m, "Unknown enumeration value")) {
    const std::string value = QuotedAfter(m, "Unknown enumeration value of");
    const std::string field_name = QuotedAfter(m, "for field");
    std::set<const pb::Descriptor*> seen;
    std::vector<const pb::FieldDescriptor*> fields;
    FindFieldsNamed(root, field_name, &seen, &fields);
    const pb::EnumDescriptor* enum_type = nullptr;
    for (const pb::FieldDescriptor* f : fields) {
      if (f->enum_type() == nullptr) continue;
      if (enum_type != nullptr && enum_type != f->enum_type()) return "";
      enum_type = f->enum_type();
    }
    if (enum_type == nullptr) return "";
    return absl::StrCat("'", field_name, "' takes a ", enum_type->name(),
                        DidYouMean(value, EnumWords(enum_type)),
                        "; valid values: ", EnumChoices(enum_type));
  }
  if (absl::StartsWith(m, "Expected integer") || absl::StartsWith(m, "Integer out of range")) {
    return "this field takes a whole number within its type's range (see "
           "docs/spec-reference.md)";
  }
  if (absl::StartsWith(m, "Expected double") || absl::StartsWith(m, "Expected float")) {
    return "this field takes a number, e.g. 0.1 or 3e-4";
  }
  if (absl::StartsWith(m, "Expected string")) {
    return "string values are written in double quotes, e.g. dtype: \"f32\"";
  }
  if (absl::StrContains(m, "Invalid value for boolean")) return "write true or false";
  if (absl::StrContains(m, "is specified multiple times")) {
    return "a non-repeated field may appear once per block; remove the duplicate";
  }
  if (absl::StartsWith(m, "Expected \":\"")) {
    return "write a scalar field as `name: value` and a message field as `name { ... }`";
  }
  if (absl::StrContains(m, "Expected identifier, got: ") && absl::EndsWith(m, "got: ")) {
    return "the file ended inside a block: a closing '}' is missing";
  }
  if (absl::StrContains(m, "Expected identifier")) {
    return "expected a field name here; check for a stray character or an unbalanced '}'";
  }
  return "";
}

absl::Status ParseTextMessage(const std::string& text, const std::string& filename,
                              pb::Message* message) {
  CollectingErrorCollector collector;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  const config_internal::EnumSpellingsResolved resolved =
      config_internal::ResolveEnumSpellings(text, message->GetDescriptor());
  if (parser.ParseFromString(resolved.text, message)) return absl::OkStatus();
  const std::string name = filename.empty() ? "<text>" : filename;
  if (collector.errors().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": not a valid ", message->GetDescriptor()->name(), " in protobuf text format"));
  }
  ParseError error = collector.errors().front();
  for (const config_internal::UnknownEnumWord& unknown : resolved.unknown) {
    if (unknown.line == error.line && unknown.column == error.column) {
      // Protobuf's own words for an unknown identifier, so the hint below
      // names the enum and its values.
      error.message = absl::StrCat("Unknown enumeration value of \"", unknown.word,
                                   "\" for field \"", unknown.field, "\".");
    }
  }
  // Positions in `resolved.text` are positions in `text` (the spellings were
  // padded to their width), and the user's own line is the one to quote.
  const SourceText source(text);
  size_t offset = source.Offset(error.line, error.column);
  // Protobuf reports an unknown name at the token after it; point at the name.
  std::string culprit = QuotedAfter(error.message, "has no field named");
  if (culprit.empty()) culprit = QuotedAfter(error.message, "Unknown enumeration value of");
  if (culprit.empty()) culprit = QuotedAfter(error.message, "Value:");
  if (!culprit.empty()) {
    const size_t at = source.FindTokenBefore(culprit, offset + culprit.size());
    if (at != std::string::npos) offset = at;
  }
  const int line = source.LineOf(offset);
  const int column = static_cast<int>(offset - source.LineStart(line));
  std::string out = absl::StrCat(name, ":", line + 1, ":", column + 1, ": ", error.message);
  const std::string quoted = source.Line(line);
  if (!quoted.empty()) {
    std::string caret = quoted.substr(0, column);
    for (char& c : caret) {
      if (c != '\t') c = ' ';
    }
    absl::StrAppend(&out, "\n    ", quoted, "\n    ", caret, "^");
  }
  const std::string hint = Hint(error, message->GetDescriptor());
  if (!hint.empty()) absl::StrAppend(&out, "\n  hint: ", hint);
  return absl::InvalidArgumentError(out);
}

}  // namespace

absl::StatusOr<RunSpec> ParseRunSpecText(const std::string& text, const std::string& filename) {
  RunSpec spec;
  absl::Status status = ParseTextMessage(text, filename, &spec);
  if (!status.ok()) return status;
  return spec;
}

absl::StatusOr<TrainConfig> ParseTrainConfigText(const std::string& text,
                                                 const std::string& filename) {
  TrainConfig config;
  absl::Status status = ParseTextMessage(text, filename, &config);
  if (!status.ok()) return status;
  return config;
}

std::string ResolvedSpecText(const RunSpec& spec) {
  std::string text;
  pb::TextFormat::Printer printer;
  printer.PrintToString(spec, &text);
  return text;
}

}  // namespace pipetrain
