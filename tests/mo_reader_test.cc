// The .mo reader against files written byte by byte in both byte orders
// (contexts, plurals, the header), its errors on truncated and corrupt
// files, and the Plural-Forms evaluator against hand-coded formulas.
#include "core/data/mo_reader.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/data/plural_forms.h"
#include "core/philox.h"
#include "gtest/gtest.h"
#include "tests/testing/mo_writer.h"

namespace pipetrain {
namespace {

using testing::BuildMo;
using testing::MoHeader;
using testing::PutU32;
using testing::RawMoEntry;

// msgstr[0] "\0" msgstr[1] ...
std::string Nul(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.push_back('\0');
    out += parts[i];
  }
  return out;
}

std::vector<RawMoEntry> SampleEntries() {
  return {
      {"", MoHeader("UTF-8", "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 ? 1 : 2);")},
      {"%d file" + std::string(1, '\0') + "%d files", Nul({"%d plik", "%d pliki", "%d plików"})},
      {"Open", "Otwórz"},
      {"menu\x04Open", "Otwórz plik"},
      {"verb\x04%d item" + std::string(1, '\0') + "%d items", Nul({"a", "b", "c"})},
      {"ctx\x04", "translation of an empty msgid with a context"},
  };
}

void ExpectSample(const MoCatalog& c) {
  EXPECT_TRUE(absl::StrContains(c.header, "charset=UTF-8"));
  ASSERT_EQ(c.entries.size(), 5u);  // the header is not an entry

  const MoEntry& plural = c.entries[0];
  EXPECT_FALSE(plural.has_context);
  EXPECT_TRUE(plural.plural);
  EXPECT_EQ(plural.msgid, "%d file");
  EXPECT_EQ(plural.msgid_plural, "%d files");
  EXPECT_EQ(plural.msgstr, (std::vector<std::string>{"%d plik", "%d pliki", "%d plików"}));

  const MoEntry& open = c.entries[1];
  EXPECT_FALSE(open.has_context);
  EXPECT_FALSE(open.plural);
  EXPECT_EQ(open.msgid, "Open");
  EXPECT_EQ(open.msgstr, std::vector<std::string>{"Otwórz"});

  const MoEntry& menu = c.entries[2];
  EXPECT_TRUE(menu.has_context);
  EXPECT_EQ(menu.context, "menu");
  EXPECT_EQ(menu.msgid, "Open");
  EXPECT_EQ(menu.msgstr[0], "Otwórz plik");

  const MoEntry& both = c.entries[3];
  EXPECT_EQ(both.context, "verb");
  EXPECT_TRUE(both.plural);
  EXPECT_EQ(both.msgid, "%d item");
  EXPECT_EQ(both.msgid_plural, "%d items");
  EXPECT_EQ(both.msgstr.size(), 3u);

  const MoEntry& empty = c.entries[4];
  EXPECT_TRUE(empty.has_context);
  EXPECT_EQ(empty.context, "ctx");
  EXPECT_EQ(empty.msgid, "");
}

TEST(MoReaderTest, ReadsLittleEndian) {
  const std::string bytes = BuildMo(SampleEntries(), /*big_endian=*/false);
  ASSERT_EQ(static_cast<unsigned char>(bytes[0]), 0xde);  // really little-endian
  auto c = ParseMo(bytes, "le.mo");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->big_endian);
  ExpectSample(*c);
}

TEST(MoReaderTest, ReadsBigEndian) {
  const std::string bytes = BuildMo(SampleEntries(), /*big_endian=*/true);
  ASSERT_EQ(static_cast<unsigned char>(bytes[0]), 0x95);
  auto c = ParseMo(bytes, "be.mo");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->big_endian);
  ExpectSample(*c);
}

TEST(MoReaderTest, AcceptsRevisionOneAndRejectsTwo) {
  auto one = ParseMo(BuildMo(SampleEntries(), false, /*revision=*/1), "r1.mo");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->revision, 1u);
  auto two = ParseMo(BuildMo(SampleEntries(), false, /*revision=*/2u << 16), "r2.mo");
  ASSERT_FALSE(two.ok());
  EXPECT_TRUE(absl::StrContains(two.status().message(), "unsupported revision 2.0"));
}

TEST(MoReaderTest, NoEntriesAndNoHeaderIsAnEmptyCatalog) {
  auto c = ParseMo(BuildMo({}, false), "empty.mo");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->entries.empty());
  EXPECT_EQ(c->header, "");
}

TEST(MoReaderTest, HeaderFields) {
  const std::string header = MoHeader("ISO-8859-1", "nplurals=2; plural=n != 1;");
  EXPECT_EQ(MoCharset(header), "ISO-8859-1");
  EXPECT_EQ(MoHeaderField(header, "plural-forms"), "nplurals=2; plural=n != 1;");
  EXPECT_EQ(MoHeaderField(header, "Language"), "");
  EXPECT_EQ(MoCharset("Content-Type: text/plain\n"), "");
  EXPECT_EQ(MoCharset("content-type: text/plain; CHARSET=utf-8"), "utf-8");
}

// Every error names the file and an offset.
void ExpectCorrupt(const std::string& bytes, const std::string& expected) {
  auto c = ParseMo(bytes, "broken.mo");
  ASSERT_FALSE(c.ok()) << "accepted: " << expected;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss);
  const std::string message(c.status().message());
  EXPECT_TRUE(absl::StrContains(message, "broken.mo")) << message;
  EXPECT_TRUE(absl::StrContains(message, "at offset")) << message;
  EXPECT_TRUE(absl::StrContains(message, expected)) << message;
}

TEST(MoReaderTest, CorruptFilesAreErrorsWithFileAndOffset) {
  const std::string good = BuildMo(SampleEntries(), false);
  ExpectCorrupt("", "too few for the magic");
  ExpectCorrupt(good.substr(0, 3), "too few for the magic");
  ExpectCorrupt(std::string("\x12\x34\x56\x78") + good.substr(4), "magic 0x78563412");
  ExpectCorrupt(good.substr(0, 20), "truncated header");

  std::string huge_count = good;
  PutU32(&huge_count, 8, 0xffffffffu, false);  // 64-bit check: no wrap-around
  ExpectCorrupt(huge_count, "past the end");

  std::string table_outside = good;
  PutU32(&table_outside, 16, static_cast<uint32_t>(good.size()) - 4, false);
  ExpectCorrupt(table_outside, "past the end");

  std::string string_outside = good;
  PutU32(&string_outside, 28 + 8 * 2 + 4, static_cast<uint32_t>(good.size()), false);
  ExpectCorrupt(string_outside, "original string 2");

  std::string long_string = good;
  PutU32(&long_string, 28 + 8 * 6 + 8 * 1, 0xfffffff0u, false);  // translation 1's length
  ExpectCorrupt(long_string, "translated string 1");
}

// Cutting a valid file anywhere, or flipping bytes at random, gives an error
// or a catalog: never a crash or a read outside the buffer.
TEST(MoReaderTest, TruncatedAndScrambledFilesNeverCrash) {
  for (bool big_endian : {false, true}) {
    const std::string good = BuildMo(SampleEntries(), big_endian);
    int errors = 0;
    for (size_t cut = 0; cut < good.size(); ++cut) {
      // A copy of exactly `cut` bytes, so reading past it is a heap overflow.
      const std::string prefix = good.substr(0, cut);
      errors += !ParseMo(prefix, "cut.mo").ok();
    }
    // Cuts inside the header and tables are always detected.
    EXPECT_GE(errors, 28 + 16 * 6);
    const PhiloxStream rng(RngKey{.seed = 7});
    uint64_t draw = 0;
    for (int trial = 0; trial < 3000; ++trial) {
      std::string bad = good;
      const int flips = 1 + static_cast<int>(rng.Bits(draw++) % 4);
      for (int f = 0; f < flips; ++f) {
        // The header and the tables: where offsets and lengths live.
        const size_t at = rng.Bits(draw++) % (28 + 16 * 6);
        bad[at] = static_cast<char>(rng.Bits(draw++));
      }
      (void)ParseMo(bad, "scrambled.mo");
    }
  }
}

TEST(MoReaderTest, ReadsFilesAndReportsMissingOnes) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("mo_reader_test_" + std::to_string(getpid()) + ".mo"))
                               .string();
  ASSERT_TRUE(testing::WriteFile(path, BuildMo(SampleEntries(), true)));
  auto c = ReadMoFile(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectSample(*c);
  auto missing = ReadMoFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), path));
}

// --- Plural-Forms ------------------------------------------------------------

void ExpectFormula(const std::string& header, const std::function<int(uint64_t)>& reference,
                   int nplurals) {
  auto forms = PluralForms::Parse(header);
  ASSERT_TRUE(forms.ok()) << forms.status();
  EXPECT_EQ(forms->nplurals(), nplurals);
  for (uint64_t n = 0; n <= 1000; ++n) {
    auto form = forms->FormFor(n);
    ASSERT_TRUE(form.ok()) << form.status();
    ASSERT_EQ(*form, reference(n)) << header << " n=" << n;
  }
}

TEST(PluralFormsTest, MatchesHandCodedRulesOfRealLanguages) {
  ExpectFormula(
      "nplurals=2; plural=(n != 1);", [](uint64_t n) { return n != 1 ? 1 : 0; }, 2);
  ExpectFormula(
      "nplurals=2; plural=n>1;", [](uint64_t n) { return n > 1 ? 1 : 0; }, 2);
  ExpectFormula(
      "nplurals=1; plural=0;", [](uint64_t) { return 0; }, 1);
  // Russian, Ukrainian.
  ExpectFormula(
      "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || "
      "n%100>=20) ? 1 : 2);",
      [](uint64_t n) {
        if (n % 10 == 1 && n % 100 != 11) return 0;
        if (n % 10 >= 2 && n % 10 <= 4 && (n % 100 < 10 || n % 100 >= 20)) return 1;
        return 2;
      },
      3);
  // Arabic: msgstr[0] is for zero, not for one.
  ExpectFormula(
      "nplurals=6; plural=n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : "
      "n%100>=11 ? 4 : 5;",
      [](uint64_t n) {
        if (n == 0) return 0;
        if (n == 1) return 1;
        if (n == 2) return 2;
        if (n % 100 >= 3 && n % 100 <= 10) return 3;
        if (n % 100 >= 11) return 4;
        return 5;
      },
      6);
  // Slovenian, with ! and nested parentheses.
  ExpectFormula(
      "nplurals=4; plural=(n%100==1 ? 0 : n%100==2 ? 1 : !(n%100!=3 && n%100!=4) ? 2 : 3);",
      [](uint64_t n) {
        if (n % 100 == 1) return 0;
        if (n % 100 == 2) return 1;
        if (n % 100 == 3 || n % 100 == 4) return 2;
        return 3;
      },
      4);
}

TEST(PluralFormsTest, CPrecedenceAndAssociativity) {
  // * before +, + before ==, && before ||, ?: right-associative; 8-3-2 is 3.
  auto forms = PluralForms::Parse("nplurals=9; plural=1+2*3==7 && 0 || 8-3-2==3 ? 4 : 0 ? 1 : 2;");
  ASSERT_TRUE(forms.ok()) << forms.status();
  EXPECT_EQ(*forms->FormFor(0), 4);
  auto division = PluralForms::Parse("nplurals=9; plural=n/2%3;");
  ASSERT_TRUE(division.ok());
  EXPECT_EQ(*division->FormFor(7), 0);  // (7/2)%3 = 0
  EXPECT_EQ(*division->FormFor(5), 2);
  auto compare = PluralForms::Parse("nplurals=2; plural=n<=2 == n<3;");
  ASSERT_TRUE(compare.ok());
  for (uint64_t n = 0; n < 5; ++n) EXPECT_EQ(*compare->FormFor(n), 1);
}

TEST(PluralFormsTest, FindsTheFieldsAnywhereLikeGettext) {
  auto forms = PluralForms::Parse("Plural-Forms: nplurals=2; plural=(n != 1);");
  ASSERT_TRUE(forms.ok()) << forms.status();
  EXPECT_EQ(*forms->FormFor(1), 0);
  EXPECT_EQ(*forms->FormFor(5), 1);
  auto reordered = PluralForms::Parse("plural=n>1; nplurals=2");
  ASSERT_TRUE(reordered.ok()) << reordered.status();
  EXPECT_EQ(*reordered->FormFor(2), 1);
  EXPECT_EQ(PluralForms::Germanic().nplurals(), 2);
  EXPECT_EQ(*PluralForms::Germanic().FormFor(1), 0);
}

TEST(PluralFormsTest, BadFormulasAreErrorsNotCrashes) {
  for (const std::string bad :
       {"", "2", "nulurals=1; plural=0;", "nplural=1; plural=0;", "nplurals=0; plural=0;",
        "nplurals=x; plural=0;", "nplurals=2; plural=n +;", "nplurals=2; plural=(n;",
        "nplurals=2; plural=n ? 1;", "nplurals=2; plural=n $ 1;", "nplurals=2; plural=m;",
        "nplurals=2; plural=n 1;", "nplurals=2; plural=99999999999999999999999;"}) {
    EXPECT_FALSE(PluralForms::Parse(bad).ok()) << bad;
  }
  // Hostile nesting and length are refused before they can exhaust the stack.
  EXPECT_FALSE(PluralForms::Parse("nplurals=2; plural=" + std::string(100000, '(') + "n" +
                                  std::string(100000, ')') + ";")
                   .ok());
  std::string chain = "nplurals=2; plural=n";
  for (int i = 0; i < 100000; ++i) chain += "+n";
  EXPECT_FALSE(PluralForms::Parse(chain + ";").ok());
  // Parses, but cannot be evaluated everywhere.
  auto zero = PluralForms::Parse("nplurals=2; plural=1/(n-1);");
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->FormFor(0).ok());  // unsigned, as in C: 1/(2^64-1) = 0
  EXPECT_FALSE(zero->FormFor(1).ok());
  auto outside = PluralForms::Parse("nplurals=2; plural=n;");
  ASSERT_TRUE(outside.ok());
  EXPECT_TRUE(outside->FormFor(1).ok());
  EXPECT_FALSE(outside->FormFor(2).ok());
}

}  // namespace
}  // namespace pipetrain
