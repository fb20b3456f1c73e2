// The corpus builder and its sources: text filters, exact pair counts,
// the split and hold-out property, duplicate removal, --min-pairs, a fake
// locale tree of hand-written .mo files (plural forms through the formula,
// merged locales, legacy charsets, corrupt files), TSV and parallel-file
// input with malformed lines, the `pipetrain data build` command, and
// (RealCorpusTest) the catalogs of this machine.
#include "core/data/corpus_builder.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/data/gettext_source.h"
#include "core/data/multiway_corpus.h"
#include "core/data/text_filters.h"
#include "core/data/tsv_corpus.h"
#include "core/philox.h"
#include "gtest/gtest.h"
#include "tests/testing/mo_writer.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/temp_dir.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::BuildMo;
using testing::MoHeader;
using testing::RawMoEntry;
using testing::WriteFile;

// A directory named after the running test, removed afterwards.
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("corpus_builder_test") {}
};

using testing::ReadAll;

std::map<std::string, std::string> ReadStats(const std::string& dir) {
  std::map<std::string, std::string> stats;
  std::istringstream lines(ReadAll(dir + "/stats.tsv"));
  std::string line;
  while (std::getline(lines, line)) {
    const size_t tab = line.find('\t');
    stats[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return stats;
}

// --- Text filters ------------------------------------------------------------

TEST(TextFiltersTest, Texts) {
  const TextFilterOptions o;
  EXPECT_EQ(CheckText("", o), TextIssue::kEmpty);
  EXPECT_EQ(CheckText("Datei %s", o), TextIssue::kNone);
  EXPECT_EQ(CheckText("文件", o), TextIssue::kNone);
  EXPECT_EQ(CheckText("Файл", o), TextIssue::kNone);
  EXPECT_EQ(CheckText("a\nb", o), TextIssue::kMultiLine);
  EXPECT_EQ(CheckText("a\tb", o), TextIssue::kMultiLine);
  EXPECT_EQ(CheckText("a\x01z", o), TextIssue::kControl);
  EXPECT_EQ(CheckText("a\xc2\x85z", o), TextIssue::kControl);  // U+0085, C1
  EXPECT_EQ(CheckText(std::string(1001, 'a'), o), TextIssue::kTooLong);
  EXPECT_EQ(CheckText(std::string(1000, 'a'), o), TextIssue::kNone);
  for (const char* format_only : {"%s: %d", "(%s)", "{0} — {1}", "123", "%1$s %2$s", "…", "%d%%"}) {
    EXPECT_EQ(CheckText(format_only, o), TextIssue::kFormatOnly) << format_only;
  }
  for (const char* bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe6\x96", "ok\xf4\x90\x80\x80"}) {
    EXPECT_EQ(CheckText(bad, o), TextIssue::kBadUtf8) << bad;
    EXPECT_FALSE(IsValidUtf8(bad));
  }
  EXPECT_EQ(TrimText("  Usage: %s\n"), "Usage: %s");
  EXPECT_EQ(CountCodePoints("Größe"), 5);
}

TEST(TextFiltersTest, Pairs) {
  const TextFilterOptions o;
  EXPECT_EQ(CheckPair("Cancel", "Cancel", o), PairIssue::kUntranslated);
  EXPECT_EQ(CheckPair("_Cancel", "cancel", o), PairIssue::kUntranslated);
  EXPECT_EQ(CheckPair("&File", "File", o), PairIssue::kUntranslated);
  EXPECT_EQ(CheckPair("Open %s", "Ouvrir %d", o), PairIssue::kPlaceholders);
  EXPECT_EQ(CheckPair("Open %s", "Ouvrir", o), PairIssue::kPlaceholders);
  EXPECT_EQ(CheckPair("%1$s of %2$d", "%2$d de %1$s", o), PairIssue::kNone);
  EXPECT_EQ(CheckPair("Save", "Enregistrer", o), PairIssue::kNone);
  EXPECT_EQ(CheckPair("Preferences", "首选项", o), PairIssue::kNone);
  EXPECT_EQ(CheckPair("abcd", std::string(30, 'b'), o), PairIssue::kLengthRatio);
  EXPECT_EQ(CheckPair("abcdef", std::string(30, 'b'), o), PairIssue::kNone);  // exactly 5x
}

TEST(TextFiltersTest, Placeholders) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Placeholders("%s of %d, 100%%"), (V{"%d", "%s"}));
  EXPECT_EQ(Placeholders("%ld %5.2f %-10s %lu %*d"), (V{"%d", "%f", "%ld", "%lu", "%s"}));
  EXPECT_EQ(Placeholders("%(name)s has %(count)d"), (V{"%(count)d", "%(name)s"}));
  EXPECT_EQ(Placeholders("{0} and {name} and {1:>3}"), (V{"{0}", "{1}", "{name}"}));
  EXPECT_EQ(Placeholders("{{literal}} 100%"), V{});
  EXPECT_EQ(Placeholders("%1 copied to %2"), (V{"%1", "%2"}));
}

// --- The builder -------------------------------------------------------------

using Texts = std::map<std::string, std::string>;  // lang → text; "en" is the pivot

void Add(CorpusBuilder* b, const Texts& texts, int rank = 0) {
  const uint32_t m = b->AddMessage(b->Language("en"), texts.at("en"));
  ASSERT_NE(m, CorpusBuilder::kNoMessage);
  for (const auto& [lang, text] : texts) {
    if (lang != "en") {
      ASSERT_TRUE(b->AddTranslation(m, b->Language(lang), rank, text));
    }
  }
}

CorpusOptions Quiet(double dev = 0, double test = 0, int64_t min_pairs = 1) {
  CorpusOptions o;
  o.dev_fraction = dev;
  o.test_fraction = test;
  o.min_pairs = min_pairs;
  o.progress = false;
  return o;
}

struct Written {
  MultiwayCorpus split[kNumSplits];
  std::vector<CorpusDirection> directions;
};

Written ReadBack(const std::string& dir) {
  Written w;
  for (int s = 0; s < kNumSplits; ++s) {
    auto c = ReadMultiwayCorpus(absl::StrCat(dir, "/", std::string(SplitName(s)), ".messages.tsv"));
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) w.split[s] = *std::move(c);
  }
  auto d = ReadDirections(dir + "/directions.tsv");
  EXPECT_TRUE(d.ok()) << d.status();
  if (d.ok()) w.directions = *std::move(d);
  return w;
}

// A random corpus over few words, so that sentences repeat across messages
// and languages are missing here and there.
void AddRandomCorpus(CorpusBuilder* b, int messages, uint64_t seed, int vocabulary) {
  const PhiloxStream rng(RngKey{.seed = seed});
  const std::vector<std::string> langs = {"de", "fr", "ja", "pt_BR", "sr_Latn"};
  uint64_t draw = 0;
  for (int i = 0; i < messages; ++i) {
    Texts t;
    t["en"] = absl::StrCat("sentence ", rng.Bits(draw++) % (messages / 2));
    for (const std::string& lang : langs) {
      if (rng.Bits(draw++) % 4 == 0) continue;
      t[lang] = absl::StrCat(lang, " word ", rng.Bits(draw++) % vocabulary);
    }
    Add(b, t);
  }
}

// The counts in directions.tsv are the distinct pairs that the written
// messages give, split by split: duplicate removal lost none and added none.
TEST(CorpusBuilderTest, DirectionCountsAreTheDistinctPairsOfTheWrittenMessages) {
  TempDir dir;
  CorpusBuilder b(Quiet(0.15, 0.15));
  AddRandomCorpus(&b, 600, 3, /*vocabulary=*/2000);
  auto s = b.Build();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(b.Write(dir.str()).ok());
  const Written w = ReadBack(dir.str());
  ASSERT_EQ(w.directions.size(), 30u);  // 6 languages, every direction
  EXPECT_EQ(s->directions, 30);
  int64_t total = 0;
  for (const CorpusDirection& d : w.directions) {
    for (int split = 0; split < kNumSplits; ++split) {
      const auto pairs = w.split[split].Pairs(d.src, d.tgt);
      EXPECT_EQ(d.pairs[split], static_cast<int64_t>(pairs.size()))
          << d.src << "→" << d.tgt << " " << SplitName(split);
      total += d.pairs[split];
    }
    EXPECT_GT(d.pairs[0], 0);
  }
  EXPECT_EQ(total, s->TotalPairs());
  EXPECT_GT(s->pairs[1], 0);
  EXPECT_GT(s->pairs[2], 0);
}

// Brute force over the input, with nothing held out.
TEST(CorpusBuilderTest, PairCountsMatchBruteForce) {
  CorpusBuilder b(Quiet());
  std::map<std::pair<std::string, std::string>, std::set<std::pair<std::string, std::string>>>
      expected;
  const PhiloxStream rng(RngKey{.seed = 11});
  uint64_t draw = 0;
  for (int i = 0; i < 300; ++i) {
    Texts t{{"en", absl::StrCat("s", rng.Bits(draw++) % 100)}};
    for (const char* lang : {"de", "fr", "it"}) {
      if (rng.Bits(draw++) % 3 != 0) t[lang] = absl::StrCat(lang, rng.Bits(draw++) % 30);
    }
    if (t.size() < 2) continue;
    Add(&b, t);
    for (const auto& [a, ta] : t) {
      for (const auto& [c, tc] : t) {
        if (a != c) expected[{a, c}].insert({ta, tc});
      }
    }
  }
  auto s = b.Build();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->direction_counts.size(), expected.size());
  for (const DirectionCount& d : s->direction_counts) {
    EXPECT_EQ(d.pairs[0], static_cast<int64_t>(expected[{d.src, d.tgt}].size()))
        << d.src << "→" << d.tgt;
    EXPECT_EQ(d.pairs[1] + d.pairs[2], 0);
  }
}

// No sentence of dev or test, in any language, is in train; no sentence of
// test is in dev; and each pivot is in the split its hash names.
TEST(CorpusBuilderTest, HeldOutSentencesNeverReachTrain) {
  TempDir dir;
  CorpusBuilder b(Quiet(0.2, 0.2));
  AddRandomCorpus(&b, 400, 5, /*vocabulary=*/500);
  ASSERT_TRUE(b.Build().ok());
  ASSERT_TRUE(b.Write(dir.str()).ok());
  const Written w = ReadBack(dir.str());
  auto sentences = [](const MultiwayCorpus& c) {
    std::set<std::pair<std::string, std::string>> out;
    for (const auto& m : c.messages) {
      for (const auto& [lang, text] : m) out.insert({c.languages[lang], text});
    }
    return out;
  };
  const auto train = sentences(w.split[0]), dev = sentences(w.split[1]),
             test = sentences(w.split[2]);
  ASSERT_GT(dev.size(), 10u);
  ASSERT_GT(test.size(), 10u);
  for (const auto& s : dev) EXPECT_EQ(train.count(s), 0u) << s.first << " " << s.second;
  for (const auto& s : test) {
    EXPECT_EQ(train.count(s), 0u) << s.first << " " << s.second;
    EXPECT_EQ(dev.count(s), 0u) << s.first << " " << s.second;
  }
  // The purge had work to do: translations repeat across pivots here.
  EXPECT_GT(b.counts().at("held_out.train_sentences_removed"), 0);
  for (int split = 0; split < kNumSplits; ++split) {
    const MultiwayCorpus& c = w.split[split];
    const int32_t en = c.LanguageIndex("en");
    for (const auto& m : c.messages) {
      for (const auto& [lang, text] : m) {
        if (lang == en) {
          EXPECT_EQ(b.SplitOf("en", text), split) << text;
        }
      }
    }
  }
}

TEST(CorpusBuilderTest, DuplicateMessagesAreRemovedAndPairsCountedOnce) {
  TempDir dir;
  CorpusBuilder b(Quiet());
  Add(&b, {{"en", "Cancel"}, {"fr", "Annuler"}, {"de", "Abbrechen"}});
  Add(&b, {{"en", "Cancel"}, {"fr", "Annuler"}, {"de", "Abbrechen"}});  // another catalog
  Add(&b, {{"en", "Cancel"}, {"fr", "Annuler"}});                       // a subset
  Add(&b, {{"en", "Cancel"}, {"de", "Verwerfen"}});                     // says more
  Add(&b, {{"en", "Abort"}, {"fr", "Annuler"}});                        // same French, other pivot
  auto s = b.Build();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(b.counts().at("dedup.messages_removed"), 2);
  EXPECT_EQ(s->messages[0], 3);
  std::map<std::string, int64_t> pairs;
  for (const DirectionCount& d : s->direction_counts) pairs[d.src + ">" + d.tgt] = d.pairs[0];
  EXPECT_EQ(pairs["en>fr"], 2);  // (Cancel, Annuler), (Abort, Annuler)
  EXPECT_EQ(pairs["fr>en"], 2);
  EXPECT_EQ(pairs["en>de"], 2);  // Abbrechen, Verwerfen
  EXPECT_EQ(pairs["fr>de"], 1);
  ASSERT_TRUE(b.Write(dir.str()).ok());
  const Written w = ReadBack(dir.str());
  EXPECT_EQ(w.split[0].messages.size(), 3u);
  EXPECT_EQ(w.split[0].Pairs("fr", "en").size(), 2u);
}

TEST(CorpusBuilderTest, LowerRankWinsWhenLocalesMerge) {
  CorpusBuilder b(Quiet());
  const auto en = b.Language("en"), es = b.Language("es");
  const uint32_t m = b.AddMessage(en, "Open");
  ASSERT_TRUE(b.AddTranslation(m, es, 2, "Abrir (es_AR)"));
  ASSERT_TRUE(b.AddTranslation(m, es, 1, "Abrir (es_ES)"));
  ASSERT_TRUE(b.AddTranslation(m, es, 2, "Abrir (es_MX)"));
  ASSERT_TRUE(b.AddTranslation(m, es, 1, "Abrir (es_ES, later)"));  // tie: the first stays
  auto s = b.Build();
  ASSERT_TRUE(s.ok());
  TempDir dir;
  ASSERT_TRUE(b.Write(dir.str()).ok());
  const auto pairs = ReadBack(dir.str()).split[0].Pairs("en", "es");
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].second, "Abrir (es_ES)");
}

TEST(CorpusBuilderTest, MinPairsDropsThinDirectionsAndLanguagesLeftWithout) {
  TempDir dir;
  CorpusBuilder b(Quiet(0, 0, /*min_pairs=*/3));
  for (int i = 0; i < 5; ++i) Add(&b, {{"en", absl::StrCat("s", i)}, {"fr", absl::StrCat("f", i)}});
  for (int i = 5; i < 7; ++i) {
    Add(&b,
        {{"en", absl::StrCat("s", i)}, {"fr", absl::StrCat("f", i)}, {"ja", absl::StrCat("j", i)}});
  }
  auto s = b.Build();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->languages, 2);
  EXPECT_EQ(s->directions, 2);
  EXPECT_EQ(s->pairs[0], 14);  // en↔fr: 7 pairs each way
  EXPECT_EQ(b.counts().at("min_pairs.languages_dropped"), 1);
  EXPECT_EQ(b.counts().at("min_pairs.directions_dropped"), 4);
  ASSERT_TRUE(b.Write(dir.str()).ok());
  EXPECT_EQ(ReadAll(dir / "languages.txt"), "en\nfr\n");
  EXPECT_FALSE(absl::StrContains(ReadAll(dir / "train.messages.tsv"), "\tja\t"));
  EXPECT_EQ(ReadStats(dir.str())["directions"], "2");
}

TEST(CorpusBuilderTest, MisuseIsAnError) {
  CorpusBuilder bad_pairs(Quiet(0, 0, 0));
  EXPECT_FALSE(bad_pairs.Build().ok());
  CorpusBuilder bad_split(Quiet(0.6, 0.5));
  EXPECT_FALSE(bad_split.Build().ok());
  CorpusBuilder b(Quiet());
  EXPECT_FALSE(b.Write("/nonexistent").ok());  // before Build
  EXPECT_EQ(b.AddMessage(b.Language("en"), "a\tb"), CorpusBuilder::kNoMessage);
  const uint32_t m = b.AddMessage(b.Language("en"), "ok");
  EXPECT_FALSE(b.AddTranslation(m, b.Language("de"), 0, "zwei\nZeilen"));
  EXPECT_FALSE(b.AddTranslation(m + 7, b.Language("de"), 0, "fine"));
  ASSERT_TRUE(b.Build().ok());
  EXPECT_FALSE(b.Build().ok());
}

TEST(CorpusBuilderTest, SameInputSameFiles) {
  TempDir dir;
  for (const char* name : {"a", "b"}) {
    CorpusBuilder b(Quiet(0.1, 0.1));
    AddRandomCorpus(&b, 300, 9, /*vocabulary=*/300);
    ASSERT_TRUE(b.Build().ok());
    ASSERT_TRUE(b.Write(dir / name).ok());
  }
  for (const char* file : {"train.messages.tsv", "dev.messages.tsv", "test.messages.tsv",
                           "directions.tsv", "languages.tsv", "stats.tsv"}) {
    EXPECT_EQ(ReadAll(dir / (std::string("a/") + file)), ReadAll(dir / (std::string("b/") + file)))
        << file;
  }
}

// --- A fake locale tree -------------------------------------------------------

constexpr char kPolish[] =
    "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);";
constexpr char kArabic[] =
    "nplurals=6; plural=n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : "
    "n%100>=11 ? 4 : 5;";

std::string Plural(const std::string& one, const std::string& many) {
  return one + std::string(1, '\0') + many;
}
std::string Forms(const std::vector<std::string>& forms) {
  std::string out;
  for (size_t i = 0; i < forms.size(); ++i) out += (i ? std::string(1, '\0') : "") + forms[i];
  return out;
}

void WriteCatalog(const std::string& root, const std::string& locale, const std::string& domain,
                  std::vector<RawMoEntry> entries, bool big_endian = false) {
  fs::create_directories(fs::path(root) / locale / "LC_MESSAGES");
  ASSERT_TRUE(WriteFile((fs::path(root) / locale / "LC_MESSAGES" / (domain + ".mo")).string(),
                        BuildMo(entries, big_endian)));
}

void WriteFakeTree(const std::string& root) {
  WriteCatalog(root, "de", "app",
               {{"", MoHeader("UTF-8", "nplurals=2; plural=(n != 1);")},
                {"Open", "Öffnen"},
                {"Save", "Speichern"},
                {"menu\x04Open", "Öffnen …"},
                {Plural("%d file", "%d files"), Forms({"%d Datei", "%d Dateien"})},
                {"Cancel", "Cancel"},                     // untranslated
                {"%s", "%s"},                             // English is format-only
                {"Usage: foo\nbar", "Aufruf: foo\nbar"},  // multi-line English
                {"Close", ""},                            // empty translation
                {"Print %s", "Drucken %d"}});             // placeholders disagree
  // A corrupt catalog next to good ones: skipped, counted, no crash.
  ASSERT_TRUE(
      WriteFile(root + "/de/LC_MESSAGES/broken.mo", std::string("\xde\x12\x04\x95junk", 8)));
  ASSERT_TRUE(WriteFile(root + "/de/LC_MESSAGES/README", "not a catalog"));
  // An old domain name linked to the new one: read once.
  fs::create_symlink("app.mo", root + "/de/LC_MESSAGES/app-old.mo");
  WriteCatalog(root, "fr", "app",
               {{"", MoHeader("UTF-8", "nplurals=2; plural=(n > 1);")},
                {"Open", "Ouvrir"},
                {"Save", "Enregistrer"},
                {Plural("%d file", "%d files"), Forms({"%d fichier", "%d fichiers"})}},
               /*big_endian=*/true);
  WriteCatalog(root, "pl", "app",
               {{"", MoHeader("UTF-8", kPolish)},
                {"Open", "Otwórz"},
                {Plural("%d file", "%d files"), Forms({"%d plik", "%d pliki", "%d plików"})}});
  WriteCatalog(root, "ar", "app",
               {{"", MoHeader("UTF-8", kArabic)},
                {"Open", "افتح"},
                {Plural("%d file", "%d files"),
                 Forms({"%d صفر", "%d واحد", "%d اثنان", "%d قليل", "%d كثير", "%d آخر"})}});
  // es_AR (rank 2) is read before es_ES (rank 1): es_ES still wins.
  WriteCatalog(root, "es_AR", "app", {{"", MoHeader("UTF-8", "")}, {"Open", "Abrir (AR)"}});
  WriteCatalog(root, "es_ES", "app", {{"", MoHeader("UTF-8", "")}, {"Open", "Abrir"}});
  WriteCatalog(root, "sr@latin", "app", {{"", MoHeader("UTF-8", "")}, {"Open", "Otvori"}});
  WriteCatalog(root, "sr", "app", {{"", MoHeader("UTF-8", "")}, {"Open", "Отвори"}});
  // Latin-1: "così" is "cos\xec".
  WriteCatalog(root, "it", "app",
               {{"", MoHeader("ISO-8859-1", "")}, {"Open", "Apri"}, {"Save", "Salva cos\xec"}});
  WriteCatalog(root, "en_GB", "app", {{"", MoHeader("UTF-8", "")}, {"Open", "Open up"}});
  WriteCatalog(root, "C", "app", {{"", MoHeader("UTF-8", "")}, {"Open", "Open it"}});
  WriteCatalog(root, "xx_bad!", "app", {{"", MoHeader("UTF-8", "")}, {"Open", "Nope"}});
  fs::create_directories(fs::path(root) / "de_AT" / "LC_TIME");  // no LC_MESSAGES
}

// The text of `lang` in the message whose English is `english`.
std::string Find(const MultiwayCorpus& c, const std::string& english, const std::string& lang) {
  const int32_t en = c.LanguageIndex("en"), l = c.LanguageIndex(lang);
  for (const auto& m : c.messages) {
    bool match = false;
    std::string text = "<none>";
    for (const auto& [id, t] : m) {
      if (id == en && t == english) match = true;
      if (id == l) text = t;
    }
    if (match) return text;
  }
  return "<no message>";
}

TEST(GettextSourceTest, ReadsAFakeLocaleTree) {
  TempDir dir;
  WriteFakeTree(dir / "locale");
  CorpusBuilder b(Quiet());
  GettextOptions options;
  options.progress = false;
  auto g = AddGettextTree(dir / "locale", options, &b);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->locales, 9);          // de fr pl ar es_AR es_ES sr@latin sr it
  EXPECT_EQ(g->locales_skipped, 3);  // en_GB, C, xx_bad!
  EXPECT_EQ(g->catalogs, 9);
  EXPECT_EQ(g->catalogs_failed, 1);
  auto s = b.Build();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(b.Write(dir / "out").ok());
  EXPECT_EQ(ReadAll(dir / "out/languages.txt"), "ar\nde\nen\nes\nfr\nit\npl\nsr\nsr_Latn\n");
  const MultiwayCorpus train = ReadBack(dir / "out").split[0];

  EXPECT_EQ(Find(train, "Open", "de"), "Öffnen");
  EXPECT_EQ(Find(train, "Open", "fr"), "Ouvrir");  // big-endian catalog
  EXPECT_EQ(Find(train, "Open", "es"), "Abrir");
  EXPECT_EQ(Find(train, "Open", "sr"), "Отвори");
  EXPECT_EQ(Find(train, "Open", "sr_Latn"), "Otvori");
  EXPECT_EQ(Find(train, "Save", "it"), "Salva così");
  // A context makes its own message.
  // Open, Open (menu context), Save, %d file, %d files.
  EXPECT_EQ(train.Pairs("en", "de").size(), 5u);
  // Plural forms through each catalog's formula: n = 1 and n = 5.
  EXPECT_EQ(Find(train, "%d file", "pl"), "%d plik");
  EXPECT_EQ(Find(train, "%d files", "pl"), "%d plików");  // not msgstr[1], "pliki" (2-4)
  EXPECT_EQ(Find(train, "%d file", "ar"), "%d واحد");     // msgstr[1]: Arabic's [0] is zero
  EXPECT_EQ(Find(train, "%d files", "ar"), "%d قليل");    // 3-10
  EXPECT_EQ(Find(train, "%d files", "fr"), "%d fichiers");
  EXPECT_EQ(Find(train, "%d file", "de"), "%d Datei");
  // Filtered.
  EXPECT_EQ(Find(train, "Cancel", "de"), "<no message>");
  EXPECT_EQ(Find(train, "Print %s", "de"), "<no message>");
  const auto& counts = b.counts();
  EXPECT_EQ(counts.at("translation.untranslated"), 1);
  EXPECT_EQ(counts.at("translation.placeholder_mismatch"), 1);
  EXPECT_EQ(counts.at("translation.empty"), 1);
  EXPECT_EQ(counts.at("english.format_only"), 1);
  EXPECT_EQ(counts.at("english.multi_line"), 1);
  EXPECT_EQ(counts.at("catalogs.unreadable"), 1);
  EXPECT_EQ(counts.at("catalogs.links_within_tree"), 1);
  EXPECT_EQ(counts.at("locales.not_a_language_code"), 2);
  EXPECT_EQ(counts.at("locales.english_variant"), 1);
  EXPECT_EQ(counts.at("merged.replaced_by_lower_rank"), 1);
  const std::string languages = ReadAll(dir / "out/languages.tsv");
  EXPECT_TRUE(absl::StrContains(languages, "\tes_AR,es_ES\n")) << languages;
  EXPECT_TRUE(absl::StrContains(languages, "\tsr@latin\n")) << languages;
}

TEST(GettextSourceTest, MissingOrEmptyTreesAreErrors) {
  TempDir dir;
  CorpusBuilder b(Quiet());
  GettextOptions options;
  options.progress = false;
  auto missing = AddGettextTree(dir / "nothing", options, &b);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "not a directory"));
  fs::create_directories(dir / "empty/de/LC_MESSAGES");
  auto empty = AddGettextTree(dir / "empty", options, &b);
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(absl::StrContains(empty.status().message(), "no gettext catalogs"));
}

// --- TSV and parallel files -----------------------------------------------------

TEST(TsvCorpusTest, MalformedLinesAreCountedAndSkipped) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir / "pairs.tsv",
                        "src_lang\ttgt_lang\tsrc\ttgt\n"  // header: skipped
                        "en\tde\tGood morning\tGuten Morgen\n"
                        "en\tpt-BR\tGood night\tBoa noite\r\n"  // CRLF, BCP 47 spelling
                        "en\tde\tBad \xff bytes\tKaputt\n"      // line 4: bad UTF-8
                        "en\tde\tonly three\n"                  // line 5: columns
                        "en\tde\ta\tb\tc\n"                     // line 6: columns
                        "english\tde\tHello\tHallo\n"           // line 7: code
                        "en\tgr\tHello\tΓεια\n"                 // line 8: code (el)
                        "de\tde_CH\tStrasse\tStraße\n"          // line 9: same language
                        "en\tde\tSame\tSame\n"                  // filtered: untranslated
                        "\n"                                    // line 11: columns
                        "de\tfr\tGuten Morgen\tBonjour\n"));
  CorpusBuilder b(Quiet());
  auto t = AddTsvFile(dir / "pairs.tsv", TsvOptions{}, &b);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->lines, 11);
  EXPECT_EQ(t->pairs, 3);
  EXPECT_EQ(t->malformed, 7);
  EXPECT_EQ(t->filtered, 1);
  const auto& c = b.counts();
  EXPECT_EQ(c.at("malformed.bad_utf8"), 1);
  EXPECT_EQ(c.at("malformed.columns"), 3);
  EXPECT_EQ(c.at("malformed.language_code"), 2);
  EXPECT_EQ(c.at("malformed.same_language"), 1);
  EXPECT_EQ(c.at("tsv.untranslated"), 1);
  auto s = b.Build();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->languages, 4);   // de en fr pt_BR
  EXPECT_EQ(s->directions, 6);  // en↔de, en↔pt_BR, de↔fr: pairs are not pivoted
  EXPECT_FALSE(AddTsvFile(dir / "missing.tsv", TsvOptions{}, &b).ok());
}

TEST(TsvCorpusTest, ParallelFiles) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir / "src.txt", "one\ntwo\nthree\nfour\nfive\n"));
  ASSERT_TRUE(WriteFile(dir / "tgt.txt",
                        "eins\nzw\xc3\n"
                        "drei\nvier\n"));
  CorpusBuilder b(Quiet());
  auto t = AddParallelFiles(dir / "src.txt", dir / "tgt.txt", "en", "de", TsvOptions{}, &b);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->lines, 5);
  EXPECT_EQ(t->pairs, 3);
  EXPECT_EQ(b.counts().at("malformed.bad_utf8"), 1);
  EXPECT_EQ(b.counts().at("malformed.line_count_mismatch"), 1);
  for (const auto& [src_lang, tgt_lang, why] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"english", "de", "--src_lang"}, {"en", "", "--tgt_lang"}, {"de", "de_AT", "same"}}) {
    auto bad =
        AddParallelFiles(dir / "src.txt", dir / "tgt.txt", src_lang, tgt_lang, TsvOptions{}, &b);
    ASSERT_FALSE(bad.ok());
    EXPECT_TRUE(absl::StrContains(bad.status().message(), why)) << bad.status();
  }
}

// --- `pipetrain data build` ---------------------------------------------------------

TEST(DataCommandTest, BuildsFromEachSourceAndReportsMalformedLines) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir / "pairs.tsv",
                        "en\tde\tGood morning\tGuten Morgen\n"
                        "en\tfr\tGood morning\tBonjour\n"
                        "en\tde\tonly three\n"
                        "en\tzz\tHello\tHallo\n"));
  auto r =
      testing::RunPipetrain(absl::StrCat("data build --from-tsv ", dir / "pairs.tsv", " --out ",
                                         dir / "tsv", " --dev-fraction 0 --test_fraction=0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "languages=3 directions=4 pairs=4")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, dir / "pairs.tsv:3: 3 tab-separated columns"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, dir / "pairs.tsv:4: 'zz'")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "malformed lines skipped: 2")) << r.output;
  EXPECT_TRUE(fs::exists(dir / "tsv/train.messages.tsv"));

  WriteFakeTree(dir / "locale");
  ASSERT_TRUE(WriteFile(dir / "src.txt", "Thank you\n"));
  ASSERT_TRUE(WriteFile(dir / "tgt.txt", "Danke\n"));
  r = testing::RunPipetrain(absl::StrCat("data build --from_gettext=", dir / "locale", " --src ",
                                         dir / "src.txt", " --tgt ", dir / "tgt.txt",
                                         " --src-lang en --tgt-lang de --out ", dir / "mix",
                                         " --min-pairs 1 --dev_fraction 0 --test-fraction 0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "languages=9 directions=72")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "[data] catalogs: 10 in")) << r.output;
  EXPECT_TRUE(absl::StrContains(ReadAll(dir / "mix/train.messages.tsv"), "\tde\tDanke\n"));
}

TEST(DataCommandTest, UsageErrors) {
  for (const auto& [args, why] : std::vector<std::pair<std::string, std::string>>{
           {"data", "no action given"},
           {"data frobnicate --out /tmp/x", "unknown action 'frobnicate'"},
           {"data build --from-tsv x.tsv", "--out DIR is required"},
           {"data build --out /tmp/never", "no input"},
           {"data build --out /tmp/never --src a.txt", "go together"},
           {"data build --out /tmp/never --from-tsv /nonexistent.tsv", "cannot open"},
       }) {
    auto r = testing::RunPipetrain(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, why)) << args << "\n" << r.output;
  }
}

// --- This machine's catalogs ---------------------------------------------------------

TEST(RealCorpusTest, BuildsFromTheSystemLocales) {
  const std::string root = "/usr/share/locale";
  const int locales = testing::CountGettextLocales(root);
  if (locales < 20) GTEST_SKIP() << root << " has " << locales << " locales; 20 needed";
  TempDir dir;
  CorpusBuilder b(Quiet(0.01, 0.01));
  GettextOptions options;
  options.progress = false;
  auto g = AddGettextTree(root, options, &b);
  ASSERT_TRUE(g.ok()) << g.status();
  auto s = b.Build();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(b.Write(dir.str()).ok());
  std::printf("locale dirs=%d catalogs=%lld languages=%lld directions=%lld pairs=%lld\n", locales,
              static_cast<long long>(g->catalogs), static_cast<long long>(s->languages),
              static_cast<long long>(s->directions), static_cast<long long>(s->TotalPairs()));
  EXPECT_GE(s->languages, 20);
  // DeepNet's many-to-many run used 87 languages, 7,482 directions.
  if (s->languages >= 88) {
    EXPECT_GT(s->directions, 7482);
  }
  // The split property on the real data, from the files.
  const Written w = ReadBack(dir.str());
  std::set<std::pair<int32_t, std::string_view>> held;
  std::vector<std::string> languages = w.split[0].languages;
  for (int split = 1; split < kNumSplits; ++split) {
    for (const auto& m : w.split[split].messages) {
      for (const auto& [lang, text] : m) {
        const auto it =
            std::lower_bound(languages.begin(), languages.end(), w.split[split].languages[lang]);
        if (it != languages.end())
          held.insert({static_cast<int32_t>(it - languages.begin()), text});
      }
    }
  }
  EXPECT_GT(held.size(), 1000u);
  int64_t leaks = 0;
  for (const auto& m : w.split[0].messages) {
    for (const auto& [lang, text] : m) leaks += held.count({lang, text});
  }
  EXPECT_EQ(leaks, 0);
}

}  // namespace
}  // namespace pipetrain
