#include "core/data/loader_cursor.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/data/token_shards.h"  // HashHex

namespace pipetrain {
namespace {

constexpr char kCursorTag[] = "pipetrain-cursor";
constexpr char kCursorVersion[] = "v1";

}  // namespace

std::string LoaderCursor::ToString() const {
  return absl::StrCat(kCursorTag, " ", kCursorVersion, " pool=", pool, " batch=", batch,
                      " steps=", steps, " check=", HashHex(check));
}

absl::StatusOr<LoaderCursor> LoaderCursor::Parse(const std::string& text) {
  const std::string trimmed(absl::StripAsciiWhitespace(text));
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("data cursor '", trimmed, "': ", why,
                                                   "; expected '", kCursorTag, " ", kCursorVersion,
                                                   " pool=N batch=N steps=N check=HEX'"));
  };
  const std::vector<std::string> words = absl::StrSplit(trimmed, ' ', absl::SkipEmpty());
  if (words.size() != 6 || words[0] != kCursorTag) return bad("not a data cursor");
  if (words[1] != kCursorVersion) {
    return bad(absl::StrCat("version '", words[1], "' is not one this build reads"));
  }
  LoaderCursor cursor;
  const char* names[] = {"pool", "batch", "steps", "check"};
  for (int i = 0; i < 4; ++i) {
    const std::string& word = words[2 + i];
    const std::string prefix = absl::StrCat(names[i], "=");
    if (word.rfind(prefix, 0) != 0) {
      return bad(absl::StrCat("field ", 3 + i, " is '", word, "', expected ", prefix, "..."));
    }
    const std::string value = word.substr(prefix.size());
    bool ok;
    if (i == 3) {
      ok = value.size() == 16 && absl::SimpleHexAtoi(value, &cursor.check);
    } else {
      int64_t* field = i == 0 ? &cursor.pool : i == 1 ? &cursor.batch : &cursor.steps;
      ok = absl::SimpleAtoi(value, field) && *field >= 0;
    }
    if (!ok) {
      return bad(absl::StrCat(names[i], " '", value, "' is not ",
                              i == 3 ? "16 hexadecimal digits" : "a non-negative integer"));
    }
  }
  return cursor;
}

}  // namespace pipetrain
