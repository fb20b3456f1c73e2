// Enum spellings in a spec file. Protobuf's text format takes an enum value
// only as its exact identifier or its number; a spec may also write the
// value's spelling, quoted or not, or its identifier in another case
// (`schedule: "1f1b"`, `schedule: 1f1b`, `norm: deepnorm`), as `--set` does.
// Before protobuf parses the text, each such word is resolved with
// FindEnumValue (enum_spelling.h) and replaced by the value's number, padded
// with spaces to the word's width, so every position protobuf reports is
// still a position in the user's file.
#ifndef PIPETRAIN_CORE_CONFIG_TEXT_ENUM_SPELLING_H_
#define PIPETRAIN_CORE_CONFIG_TEXT_ENUM_SPELLING_H_

#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"

namespace pipetrain::config_internal {

// A quoted word set on an enum field that names no value of the enum.
// Protobuf reports it as "Expected integer or identifier"; the parser says
// which field and which values it takes instead.
struct UnknownEnumWord {
  int line = 0;    // protobuf's position of the quoted token: 0-based,
  int column = 0;  // tabs advancing to the next multiple of 8
  std::string word;
  std::string field;
};

struct EnumSpellingsResolved {
  std::string text;
  std::vector<UnknownEnumWord> unknown;
};

// `text`, a message of type `root` in text format, with its enum spellings
// resolved. Text protobuf cannot parse is left as it is for protobuf to
// report; values inside lists (`[a, b]`) are left alone.
EnumSpellingsResolved ResolveEnumSpellings(const std::string& text,
                                           const google::protobuf::Descriptor* root);

}  // namespace pipetrain::config_internal

#endif  // PIPETRAIN_CORE_CONFIG_TEXT_ENUM_SPELLING_H_
