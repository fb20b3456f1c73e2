// Locale names and users' codes to corpus language codes: the table of
// kept scripts and regions, the merged variants and their ranks, and the
// rejection of anything that is not a language code.
#include "core/data/language_codes.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

struct Case {
  std::string input;
  std::string code;
  int rank;
};

void ExpectCode(const Case& c) {
  auto got = NormalizeLanguageCode(c.input);
  ASSERT_TRUE(got.ok()) << c.input << ": " << got.status();
  EXPECT_EQ(got->code, c.code) << c.input;
  EXPECT_EQ(got->rank, c.rank) << c.input;
}

TEST(LanguageCodesTest, PlainCodesAreThemselves) {
  for (const Case& c : std::vector<Case>{{"de", "de", 0},
                                         {"ast", "ast", 0},
                                         {"fil", "fil", 0},
                                         {"ckb", "ckb", 0},
                                         {"EN", "en", 0},
                                         {"Fr", "fr", 0}}) {
    ExpectCode(c);
  }
}

TEST(LanguageCodesTest, EncodingsAndCurrencyModifiersSayNothing) {
  ExpectCode({"de.UTF-8", "de", 0});
  ExpectCode({"de.utf8", "de", 0});
  ExpectCode({"de_DE.ISO-8859-15@euro", "de", 1});
  ExpectCode({"fr@euro", "fr", 0});
}

TEST(LanguageCodesTest, ChineseKeepsItsThreeWrittenStandards) {
  ExpectCode({"zh_CN", "zh_CN", 0});
  ExpectCode({"zh_Hans", "zh_CN", 1});
  ExpectCode({"zh_SG", "zh_CN", 2});
  ExpectCode({"zh", "zh_CN", 3});
  ExpectCode({"zh_TW", "zh_TW", 0});
  ExpectCode({"zh_Hant", "zh_TW", 1});
  ExpectCode({"zh_HK", "zh_HK", 0});
  ExpectCode({"zh_MO", "zh_HK", 1});
  ExpectCode({"zh_Hant_HK", "zh_HK", 1});
  ExpectCode({"zh-Hans-CN", "zh_CN", 1});
  ExpectCode({"zh_CN.GB2312", "zh_CN", 0});
}

TEST(LanguageCodesTest, BrazilianPortugueseIsKeptApart) {
  ExpectCode({"pt_BR", "pt_BR", 0});
  ExpectCode({"pt-br", "pt_BR", 0});
  ExpectCode({"pt", "pt", 0});
  ExpectCode({"pt_PT", "pt", 1});
  ExpectCode({"pt_AO", "pt", 2});
}

TEST(LanguageCodesTest, OtherRegionsMergeHomeRegionFirst) {
  ExpectCode({"de_DE", "de", 1});
  ExpectCode({"de_CH", "de", 2});
  ExpectCode({"es_ES", "es", 1});
  ExpectCode({"es_AR", "es", 2});
  ExpectCode({"es_419", "es", 2});
  ExpectCode({"en_GB", "en", 2});
  ExpectCode({"en_US", "en", 2});
  ExpectCode({"bn_IN", "bn", 2});
  ExpectCode({"nb_NO", "nb", 2});
  ExpectCode({"kw_GB", "kw", 2});
}

TEST(LanguageCodesTest, ScriptsMakeLanguagesOfTheirOwn) {
  ExpectCode({"sr", "sr", 0});
  ExpectCode({"sr@latin", "sr_Latn", 0});
  ExpectCode({"sr@Latn", "sr_Latn", 0});
  ExpectCode({"sr_RS@latin", "sr_Latn", 2});
  ExpectCode({"sr_Latn", "sr_Latn", 0});
  ExpectCode({"sr_Cyrl", "sr", 1});  // the default script says nothing
  ExpectCode({"uz@cyrillic", "uz_Cyrl", 0});
  ExpectCode({"uz_Latn", "uz", 1});
  ExpectCode({"be@latin", "be_Latn", 0});
  ExpectCode({"tt@iqtelif", "tt_Latn", 0});
  ExpectCode({"pa_PK", "pa_Arab", 2});  // Shahmukhi
  ExpectCode({"az_IR", "az_Arab", 2});
  ExpectCode({"ks_IN@devanagari", "ks_Deva", 2});
  ExpectCode({"en@shaw", "en_Shaw", 0});
}

TEST(LanguageCodesTest, VariantsOfOneStandardMergeBelowIt) {
  ExpectCode({"ca@valencia", "ca", 1});
  ExpectCode({"sr@ije", "sr", 1});
  ExpectCode({"en@quot", "en", 1});
  ExpectCode({"en@boldquot", "en", 1});
}

TEST(LanguageCodesTest, WithdrawnCodes) {
  ExpectCode({"iw", "he", 1});
  ExpectCode({"in", "id", 1});
  ExpectCode({"ji", "yi", 1});
  ExpectCode({"no", "nb", 1});
  ExpectCode({"mo", "ro", 2});
  ExpectCode({"sh", "sr_Latn", 2});
}

TEST(LanguageCodesTest, PrimaryLanguage) {
  EXPECT_EQ(PrimaryLanguage("pt_BR"), "pt");
  EXPECT_EQ(PrimaryLanguage("sr_Latn"), "sr");
  EXPECT_EQ(PrimaryLanguage("ast"), "ast");
}

TEST(LanguageCodesTest, GarbageIsRejectedSayingWhy) {
  struct Bad {
    std::string input, why;
  };
  for (const Bad& b : std::vector<Bad>{
           {"", "empty"},
           {"C", "not 2 or 3 letters"},
           {"POSIX", "not 2 or 3 letters"},
           {"english", "not 2 or 3 letters"},
           {"e1", "not 2 or 3 letters"},
           {"gr", "not an ISO 639-1 code"},  // Greek is el
           {"jp", "not an ISO 639-1 code"},  // Japanese is ja
           {"de_", "neither a script nor a region"},
           {"de_D", "neither a script nor a region"},
           {"de_DE_CH", "neither a script nor a region"},
           {"de_Latn_Cyrl", "neither a script nor a region"},
           {"de_12", "neither a script nor a region"},
           {"aa@saaho", "unknown locale modifier '@saaho'"},
           {"de@", "unknown locale modifier"},
           {"sr_Cyrl@latin", "two scripts"},
           {"../etc", "not 2 or 3 letters"},
       }) {
    auto got = NormalizeLanguageCode(b.input);
    ASSERT_FALSE(got.ok()) << "'" << b.input << "' accepted as " << got->code;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(got.status().message());
    EXPECT_TRUE(absl::StrContains(message, b.why)) << b.input << ": " << message;
    EXPECT_TRUE(absl::StrContains(message, "'" + b.input + "'")) << message;
  }
}

}  // namespace
}  // namespace pipetrain
