// `pipetrain data build` on empty or unusable input (issue 13 §7): it exits
// non-zero, names the input and says what was wrong and what to do, and
// writes no corpus. Every input lives in the test's temporary directory; a
// FIFO or a device must be refused before it is read (one would block the
// read, the other never end), so every run is bounded by `timeout`.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/mo_writer.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/temp_dir.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::WriteFile;

class DataBuildInputTest : public ::testing::Test {
 protected:
  // `data build ARGS --out DIR/out`, killed after 30 s and held to 2 GiB of
  // address space: a build that blocked on a FIFO or read /dev/zero without
  // end fails the test instead of stalling the suite or filling the memory
  // of a shared machine.
  testing::RunResult Build(const std::string& args) {
    return testing::RunCommand(absl::StrCat("ulimit -v 2097152; timeout 30 ", PIPETRAIN_BINARY,
                                            " data build ", args, " --out ", out(), " 2>&1"));
  }
  std::string out() const { return dir_ / "out"; }
  // The command failed with `why` and wrote no corpus.
  void ExpectRefused(const testing::RunResult& r, const std::string& why) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_THAT(r.output, HasSubstr(why));
    EXPECT_FALSE(fs::exists(out() + "/train.messages.tsv")) << r.output;
  }
  void Catalog(const std::string& locale, const std::string& bytes) {
    fs::create_directories(dir_ / ("locale/" + locale + "/LC_MESSAGES"));
    ASSERT_TRUE(WriteFile(dir_ / ("locale/" + locale + "/LC_MESSAGES/app.mo"), bytes));
  }

  testing::TempDir dir_{"data_build_input_test"};
};

TEST_F(DataBuildInputTest, EmptyLocaleTreeIsRefused) {
  fs::create_directories(dir_ / "locale");
  ExpectRefused(Build("--from_gettext " + (dir_ / "locale")), "no gettext catalogs under");
}

TEST_F(DataBuildInputTest, LocaleTreeWithoutMoFilesIsRefused) {
  fs::create_directories(dir_ / "locale/fr/LC_MESSAGES");
  ASSERT_TRUE(WriteFile(dir_ / "locale/fr/LC_MESSAGES/README", "not a catalog"));
  ExpectRefused(Build("--from_gettext " + (dir_ / "locale")), "no gettext catalogs under");
}

TEST_F(DataBuildInputTest, LocaleTreeOfCorruptCatalogsIsRefused) {
  Catalog("fr", std::string("\xde\x12\x04\x95junk", 8));
  Catalog("de", "");
  const auto r = Build("--from_gettext " + (dir_ / "locale"));
  ExpectRefused(r, absl::StrCat("--from_gettext ", dir_ / "locale",
                                ": none of its 2 catalogs could be read"));
  EXPECT_THAT(r.output, HasSubstr("point --from_gettext at a locale tree"));
}

TEST_F(DataBuildInputTest, CatalogsWithoutTranslationsAreRefused) {
  // Only the header entry, and a message left untranslated.
  const std::string mo = testing::BuildMo(
      {{"", testing::MoHeader("UTF-8", "nplurals=2; plural=(n != 1);")}, {"Open", ""}},
      /*big_endian=*/false);
  Catalog("fr", mo);
  Catalog("de", mo);
  ExpectRefused(Build("--from_gettext " + (dir_ / "locale")), "hold no usable translation");
}

TEST_F(DataBuildInputTest, EmptyTsvIsRefused) {
  ASSERT_TRUE(WriteFile(dir_ / "pairs.tsv", ""));
  const auto r = Build("--from_tsv " + (dir_ / "pairs.tsv"));
  ExpectRefused(r, absl::StrCat("--from_tsv ", dir_ / "pairs.tsv", " is empty"));
  EXPECT_THAT(r.output, HasSubstr("src_lang<TAB>tgt_lang<TAB>source<TAB>target"));
}

TEST_F(DataBuildInputTest, GarbageTsvIsRefused) {
  // Bytes of every value, newlines among them: malformed lines only.
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 131 + 7) % 256);
  ASSERT_TRUE(WriteFile(dir_ / "pairs.tsv", garbage));
  ExpectRefused(Build("--from_tsv " + (dir_ / "pairs.tsv")),
                absl::StrCat("--from_tsv ", dir_ / "pairs.tsv", " gave no sentence pair: of its"));
}

TEST_F(DataBuildInputTest, TsvOfWrongColumnsIsRefused) {
  ASSERT_TRUE(WriteFile(dir_ / "pairs.tsv", "en\tde\tonly three\nhello world\n"));
  ExpectRefused(Build("--from_tsv " + (dir_ / "pairs.tsv")),
                "gave no sentence pair: of its 2 lines 2 are malformed");
}

TEST_F(DataBuildInputTest, TsvThatIsNotARegularFileIsRefusedUnread) {
  fs::create_directories(dir_ / "a_dir.tsv");
  ExpectRefused(Build("--from_tsv " + (dir_ / "a_dir.tsv")), "is not a regular file (a directory)");
  // A FIFO nobody writes to: opening it would block for ever.
  ASSERT_EQ(mkfifo((dir_ / "fifo.tsv").c_str(), 0600), 0);
  ExpectRefused(Build("--from_tsv " + (dir_ / "fifo.tsv")),
                "is not a regular file (a FIFO, socket or device)");
  // A device read to its end never ends.
  ExpectRefused(Build("--from_tsv /dev/zero"), "--from_tsv /dev/zero is not a regular file");
  ExpectRefused(Build("--src /dev/zero --tgt /dev/zero --src_lang en --tgt_lang de"),
                "--src /dev/zero is not a regular file");
}

TEST_F(DataBuildInputTest, EmptyParallelFilesAreRefused) {
  ASSERT_TRUE(WriteFile(dir_ / "src.txt", ""));
  ASSERT_TRUE(WriteFile(dir_ / "tgt.txt", ""));
  ExpectRefused(Build(absl::StrCat("--src ", dir_ / "src.txt", " --tgt ", dir_ / "tgt.txt",
                                   " --src_lang en --tgt_lang de")),
                "gave no sentence pair");
}

TEST_F(DataBuildInputTest, NoDirectionLeftIsRefusedBeforeWriting) {
  ASSERT_TRUE(WriteFile(dir_ / "pairs.tsv", "en\tde\tGood morning\tGuten Morgen\n"));
  ExpectRefused(Build("--from_tsv " + (dir_ / "pairs.tsv") + " --min_pairs 5"),
                "no direction has --min_pairs=5 distinct train pairs, so the corpus would be "
                "empty");
  // The same file with the default threshold builds.
  const auto r =
      Build("--from_tsv " + (dir_ / "pairs.tsv") + " --dev_fraction 0 --test_fraction 0");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out() + "/train.messages.tsv")) << r.output;
}

}  // namespace
}  // namespace pipetrain
