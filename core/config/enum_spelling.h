// The one way a user's word becomes a proto enum value, and back. A value is
// named by its identifier (SCHEDULE_1F1B), in any case, or by the short
// spelling its .proto gives it (`[(spelling) = "1f1b"]`,
// proto/enum_spelling.proto). The spec parser, `--set`, the `plan` flags and
// the code that builds from a resolved spec all go through FindEnumValue, so
// a spelling accepted in one place is accepted in every place; logs print
// EnumSpelling, the word the user wrote.
#ifndef PIPETRAIN_CORE_CONFIG_ENUM_SPELLING_H_
#define PIPETRAIN_CORE_CONFIG_ENUM_SPELLING_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/generated_enum_reflection.h"

namespace pipetrain {

// The value of `enum_type` that `text` names: the exact identifier, else the
// one value whose identifier or spelling equals `text` ignoring case. Null
// when nothing matches, or when two values do (a spelling that could mean
// either is refused rather than guessed).
const google::protobuf::EnumValueDescriptor* FindEnumValue(
    const google::protobuf::EnumDescriptor* enum_type, absl::string_view text);

// The value's spelling ("1f1b"), or its identifier when it has none.
std::string EnumSpelling(const google::protobuf::EnumValueDescriptor* value);

// The same for a generated enum; a number outside the enum prints as itself.
template <typename Enum>
std::string EnumSpelling(Enum value) {
  const google::protobuf::EnumValueDescriptor* d =
      google::protobuf::GetEnumDescriptor<Enum>()->FindValueByNumber(static_cast<int>(value));
  return d == nullptr ? absl::StrCat(static_cast<int>(value)) : EnumSpelling(d);
}

// What a user may write for `enum_type`, to list in an error: "gpipe
// (SCHEDULE_GPIPE), 1f1b (SCHEDULE_1F1B)" where values have spellings,
// "POST_LN, PRE_LN" where they do not. The *_UNSPECIFIED placeholder is left
// out: writing it is never what a user means.
std::string EnumChoices(const google::protobuf::EnumDescriptor* enum_type);

// Every identifier and spelling of `enum_type` but the placeholder: the
// candidates for a "did you mean" suggestion.
std::vector<std::string> EnumWords(const google::protobuf::EnumDescriptor* enum_type);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_CONFIG_ENUM_SPELLING_H_
