#include "core/data/language_codes.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pipetrain {
namespace {

// ISO 639-1, complete (184 codes), sorted for binary search. Two-letter codes
// are checked against it so that the usual mistakes ("gr" for Greek, "jp" for
// Japanese, "cz" for Czech) are caught; three-letter codes (ISO 639-2/3, some
// 8,000) are accepted on their form alone.
constexpr std::string_view kIso6391[] = {
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu"};

// Withdrawn or macro-language codes that locale trees still use.
struct Alias {
  std::string_view from, to, script;
  int rank;
};
constexpr Alias kAliases[] = {
    {"iw", "he", "", 1},     {"in", "id", "", 1}, {"ji", "yi", "", 1},
    {"jw", "jv", "", 1},     {"no", "nb", "", 1},  // the "no" catalogs are Bokmål
    {"mo", "ro", "", 2},                           // Moldovan: Romanian since 2008
    {"sh", "sr", "Latn", 2},                       // Serbo-Croatian: written as Serbian Latin
};

// glibc locale modifiers. A script modifier makes a language of its own
// (sr@latin is not sr); @euro only named a currency; the rest are variants
// of one written standard, merged into the language below its own spelling.
struct Modifier {
  std::string_view name, script;
  int rank;
};
constexpr Modifier kModifiers[] = {
    {"latin", "Latn", 0},    {"latn", "Latn", 0},    {"iqtelif", "Latn", 0},
    {"cyrillic", "Cyrl", 0}, {"cyrl", "Cyrl", 0},    {"devanagari", "Deva", 0},
    {"deva", "Deva", 0},     {"arabic", "Arab", 0},  {"arab", "Arab", 0},
    {"shaw", "Shaw", 0},     {"shavian", "Shaw", 0}, {"euro", "", 0},
    {"valencia", "", 1},  // Valencian: Catalan's other standard
    {"ije", "", 1},       // Serbian, ijekavian: Cyrillic, other vowel reflexes
    {"quot", "", 1},      // English with typographic quotes
    {"boldquot", "", 1},
};

// The script a language is written in when none is named; naming it changes
// nothing (sr_Cyrl is sr). Languages not listed default to Latin.
struct DefaultScript {
  std::string_view language, script;
};
constexpr DefaultScript kDefaultScripts[] = {
    {"ar", "Arab"}, {"be", "Cyrl"}, {"bg", "Cyrl"}, {"el", "Grek"}, {"fa", "Arab"}, {"he", "Hebr"},
    {"hi", "Deva"}, {"ja", "Jpan"}, {"kk", "Cyrl"}, {"ko", "Kore"}, {"ks", "Arab"}, {"ky", "Cyrl"},
    {"mk", "Cyrl"}, {"mn", "Cyrl"}, {"pa", "Guru"}, {"ps", "Arab"}, {"ru", "Cyrl"}, {"sd", "Arab"},
    {"sr", "Cyrl"}, {"tg", "Cyrl"}, {"tt", "Cyrl"}, {"ug", "Arab"}, {"uk", "Cyrl"}, {"ur", "Arab"},
};

// Regions that imply another script than the language's default.
struct RegionScript {
  std::string_view language, region, script;
};
constexpr RegionScript kRegionScripts[] = {
    {"pa", "PK", "Arab"},  // Punjabi in Shahmukhi
    {"az", "IR", "Arab"},  // South Azerbaijani
};

absl::Status NotACode(std::string_view name, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("'", std::string(name), "' is not a language code (", std::string(why),
                   "): expected ll or lll (ISO 639), optionally followed by _Ssss (script) "
                   "or _RR (region), as in de, pt_BR, sr_Latn, ast"));
}

bool AllOf(std::string_view s, int (*pred)(int)) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [pred](char c) { return pred(static_cast<unsigned char>(c)); });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string Title(std::string_view s) {
  std::string out = Lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string_view DefaultScriptOf(std::string_view language) {
  for (const DefaultScript& d : kDefaultScripts) {
    if (d.language == language) return d.script;
  }
  return "Latn";
}

// Chinese keeps its written standards apart: Simplified (zh_CN), Traditional
// as written in Taiwan (zh_TW) and in Hong Kong (zh_HK).
LanguageCode ResolveChinese(std::string_view script, std::string_view region, int rank) {
  if (script == "Hant") {
    if (region == "HK" || region == "MO") return {"zh_HK", rank + 1};
    return {"zh_TW", rank + 1};
  }
  if (script == "Hans") return {"zh_CN", rank + 1};
  if (region == "CN") return {"zh_CN", rank};
  if (region == "TW") return {"zh_TW", rank};
  if (region == "HK") return {"zh_HK", rank};
  if (region == "MO") return {"zh_HK", rank + 1};
  if (region == "SG" || region == "MY") return {"zh_CN", rank + 2};
  return {"zh_CN", rank + 3};  // bare zh: the catalogs that use it are Simplified
}

}  // namespace

std::string_view PrimaryLanguage(std::string_view code) {
  return code.substr(0, std::min(code.find('_'), code.size()));
}

absl::StatusOr<LanguageCode> NormalizeLanguageCode(std::string_view name) {
  if (name.empty()) return NotACode(name, "empty");
  std::string_view rest = name;
  int rank = 0;
  std::string script;

  // ll_RR.ENCODING@modifier: the encoding says nothing about the language.
  std::string_view modifier;
  const size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    modifier = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  if (const size_t dot = rest.find('.'); dot != std::string_view::npos) rest = rest.substr(0, dot);
  if (at != std::string_view::npos) {
    const std::string lowered = Lower(modifier);
    const Modifier* found = nullptr;
    for (const Modifier& m : kModifiers) {
      if (m.name == lowered) found = &m;
    }
    if (found == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", std::string(name), "': unknown locale modifier '@", std::string(modifier),
          "' (known: @latin, @cyrillic, @devanagari, @arabic, @iqtelif, @shaw, "
          "@euro, @valencia, @ije, @quot, @boldquot)"));
    }
    script = std::string(found->script);
    rank += found->rank;
  }

  // Subtags: language, then an optional script, then an optional region.
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= rest.size(); ++i) {
    if (i == rest.size() || rest[i] == '_' || rest[i] == '-') {
      parts.push_back(rest.substr(start, i - start));
      start = i + 1;
    }
  }
  if (parts[0].size() < 2 || parts[0].size() > 3 || !AllOf(parts[0], &isalpha)) {
    return NotACode(
        name, absl::StrCat("the language '", std::string(parts[0]), "' is not 2 or 3 letters"));
  }
  std::string language = Lower(parts[0]);
  std::string region;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (p.size() == 4 && AllOf(p, &isalpha) && i == 1) {
      if (!script.empty() && Title(p) != script) {
        return NotACode(name, absl::StrCat("two scripts, ", script, " and ", Title(p)));
      }
      script = Title(p);
    } else if (((p.size() == 2 && AllOf(p, &isalpha)) || (p.size() == 3 && AllOf(p, &isdigit))) &&
               region.empty()) {
      region = Upper(p);
    } else {
      return NotACode(name,
                      absl::StrCat("'", std::string(p), "' is neither a script nor a region"));
    }
  }

  for (const Alias& a : kAliases) {
    if (a.from == language) {
      language = std::string(a.to);
      if (!a.script.empty() && script.empty()) script = std::string(a.script);
      rank += a.rank;
    }
  }
  if (language.size() == 2 &&
      !std::binary_search(std::begin(kIso6391), std::end(kIso6391), std::string_view(language))) {
    return NotACode(name, absl::StrCat("'", language, "' is not an ISO 639-1 code"));
  }

  if (language == "zh") return ResolveChinese(script, region, rank);
  if (script.empty()) {
    for (const RegionScript& r : kRegionScripts) {
      if (r.language == language && r.region == region) script = std::string(r.script);
    }
  }
  if (!script.empty() && script == DefaultScriptOf(language)) {
    script.clear();
    rank += 1;
  }
  if (language == "pt" && region == "BR") return LanguageCode{"pt_BR", rank};
  // Every other region is a variant of one written language (de_CH, es_AR,
  // en_GB, bn_IN): merged, the language's home region (de_DE) first.
  if (!region.empty()) rank += region == Upper(language) ? 1 : 2;
  return LanguageCode{script.empty() ? language : absl::StrCat(language, "_", script), rank};
}

}  // namespace pipetrain
