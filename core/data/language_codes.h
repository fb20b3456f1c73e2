// Language codes of the corpus: one spelling per language, so that the model
// sees one tag per language whichever locale directory or user file the text
// came from. The table (which regions and scripts are kept, which variants are
// merged) is documented in docs/data.md.
#ifndef PIPETRAIN_CORE_DATA_LANGUAGE_CODES_H_
#define PIPETRAIN_CORE_DATA_LANGUAGE_CODES_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pipetrain {

struct LanguageCode {
  // ll or lll, optionally _Ssss (script) or _RR (region): "de", "pt_BR",
  // "sr_Latn", "zh_TW", "ast".
  std::string code;
  // 0 when the input was the code's own spelling; higher for variants merged
  // into it (de_CH → de is 2, zh_Hans → zh_CN is 1). When several locales give
  // one language a translation of the same message, the lowest rank wins.
  int rank = 0;
};

// Normalises a locale directory name ("sr@latin", "pt_BR.UTF-8", "de_CH",
// "zh_Hant") or a user's language code ("pt-BR", "EN") to the corpus code.
// Fails, saying why and what is expected, for anything that is not a language
// code: "C", "POSIX", "english", "gr" (not ISO 639-1), an unknown "@modifier".
absl::StatusOr<LanguageCode> NormalizeLanguageCode(std::string_view name);

// "pt" for "pt_BR", "sr" for "sr_Latn".
std::string_view PrimaryLanguage(std::string_view code);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_LANGUAGE_CODES_H_
