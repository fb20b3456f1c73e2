#include "core/config/enum_spelling.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "proto/enum_spelling.pb.h"

namespace pipetrain {
namespace {

namespace pb = google::protobuf;

bool IsPlaceholder(const pb::EnumValueDescriptor* value) {
  return value->number() == 0 && absl::EndsWith(value->name(), "_UNSPECIFIED");
}

const std::string& SpellingOption(const pb::EnumValueDescriptor* value) {
  return value->options().GetExtension(spelling);
}

}  // namespace

const pb::EnumValueDescriptor* FindEnumValue(const pb::EnumDescriptor* enum_type,
                                             absl::string_view text) {
  if (const pb::EnumValueDescriptor* exact = enum_type->FindValueByName(std::string(text))) {
    return exact;
  }
  const pb::EnumValueDescriptor* found = nullptr;
  for (int i = 0; i < enum_type->value_count(); ++i) {
    const pb::EnumValueDescriptor* value = enum_type->value(i);
    const std::string& short_name = SpellingOption(value);
    if (absl::EqualsIgnoreCase(value->name(), text) ||
        (!short_name.empty() && absl::EqualsIgnoreCase(short_name, text))) {
      if (found != nullptr && found != value) return nullptr;
      found = value;
    }
  }
  return found;
}

std::string EnumSpelling(const pb::EnumValueDescriptor* value) {
  const std::string& short_name = SpellingOption(value);
  return short_name.empty() ? value->name() : short_name;
}

std::string EnumChoices(const pb::EnumDescriptor* enum_type) {
  std::vector<std::string> choices;
  for (int i = 0; i < enum_type->value_count(); ++i) {
    const pb::EnumValueDescriptor* value = enum_type->value(i);
    if (IsPlaceholder(value)) continue;
    const std::string& short_name = SpellingOption(value);
    choices.push_back(short_name.empty() ? value->name()
                                         : absl::StrCat(short_name, " (", value->name(), ")"));
  }
  return absl::StrJoin(choices, ", ");
}

std::vector<std::string> EnumWords(const pb::EnumDescriptor* enum_type) {
  std::vector<std::string> words;
  for (int i = 0; i < enum_type->value_count(); ++i) {
    const pb::EnumValueDescriptor* value = enum_type->value(i);
    if (IsPlaceholder(value)) continue;
    words.push_back(value->name());
    if (!SpellingOption(value).empty()) words.push_back(SpellingOption(value));
  }
  return words;
}

}  // namespace pipetrain
