// Issue 13 §1, the data side: every byte of the shards' manifest.tsv is
// covered by its last line's CRC-32C, a run's copy of spm.model by the
// checksum file beside it, and the manifest's tag ids are checked against
// the vocabulary. Each flip test flips many seeded random bits, one at a
// time, and requires every one to be refused.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/data/multilingual_loader.h"
#include "core/data/token_shard_writer.h"
#include "core/data/token_shards.h"
#include "core/data/vocab_checksum.h"
#include "gtest/gtest.h"
#include "launcher/trainer/corpus_preparation.h"
#include "tests/testing/shard_fixtures.h"
#include "tests/testing/temp_dir.h"

namespace pipetrain {
namespace {

using testing::FakeVocabulary;

const std::vector<std::string> kLanguages = {"de", "en", "fr", "ja", "pt_BR"};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Flips bit `bit` (0 = the first byte's lowest) of `bytes`.
std::string Flipped(std::string bytes, size_t bit) {
  bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
  return bytes;
}

class DataIntegrityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteTestCorpus(corpus(), testing::MakeTestCorpus(120, 6, 11));
    vocab_ = std::make_unique<FakeVocabulary>(dir_ / "fake.model", kLanguages);
    const auto written =
        WriteCorpusShards(corpus(), vocab_->Get(), testing::QuietShardOptions(), shards());
    ASSERT_TRUE(written.ok()) << written.status();
  }

  std::string corpus() const { return dir_ / "corpus"; }
  std::string shards() const { return dir_ / "shards"; }
  std::string manifest() const { return shards() + "/manifest.tsv"; }

  // The manifest as a format-1 writer (before the CRC) left it.
  std::string FormatOne(const std::string& sealed) const {
    std::string text = sealed.substr(0, sealed.rfind("crc32c\t"));
    return absl::StrReplaceAll(text, {{"pipetrain-shards\t2\n", "pipetrain-shards\t1\n"}});
  }

  // `text` with language `code`'s tag id replaced by `id`.
  static std::string WithTag(const std::string& text, const std::string& code, int32_t id) {
    std::istringstream in(text);
    std::string out;
    for (std::string line; std::getline(in, line);) {
      if (absl::StartsWith(line, absl::StrCat("language\t", code, "\t"))) {
        line = absl::StrCat("language\t", code, "\t", id);
      }
      absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

  testing::TempDir dir_{"data_integrity_test"};
  std::unique_ptr<FakeVocabulary> vocab_;
};

TEST_F(DataIntegrityTest, ShardManifestEndsWithTheCrcOfItsBytes) {
  const std::string text = ReadAll(manifest());
  const size_t seal = text.rfind("crc32c\t");
  ASSERT_NE(seal, std::string::npos) << text;
  EXPECT_EQ(text.substr(seal), SealShardManifest(text.substr(0, seal)).substr(seal));
  EXPECT_TRUE(absl::StartsWith(text, "format\tpipetrain-shards\t2\n")) << text;
  const auto opened = CorpusShards::Open(shards());
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->manifest_sealed());
}

TEST_F(DataIntegrityTest, EveryFlippedBitOfTheShardManifestIsRefused) {
  const std::string good = ReadAll(manifest());
  std::mt19937_64 rng(13);
  const int kFlips = 400;  // of about 1,500 bits
  int refused = 0;
  for (int i = 0; i < kFlips; ++i) {
    const size_t bit = rng() % (8 * good.size());
    WriteAll(manifest(), Flipped(good, bit));
    const auto opened = CorpusShards::Open(shards());
    if (!opened.ok()) {
      ++refused;
      EXPECT_TRUE(absl::StrContains(opened.status().message(), "manifest.tsv"))
          << "bit " << bit << ": " << opened.status();
      EXPECT_TRUE(absl::StrContains(opened.status().message(), "pipetrain data shard"))
          << "bit " << bit << ": " << opened.status();
    } else {
      ADD_FAILURE() << "bit " << bit << " (byte '" << good[bit / 8] << "') was accepted";
    }
  }
  EXPECT_EQ(refused, kFlips);
  WriteAll(manifest(), good);
  EXPECT_TRUE(CorpusShards::Open(shards()).ok());
}

TEST_F(DataIntegrityTest, CrcMismatchAndMissingSealAreNamed) {
  const std::string good = ReadAll(manifest());
  // A flipped digit of fr's tag id.
  const size_t fr = good.find("language\tfr\t");
  ASSERT_NE(fr, std::string::npos);
  WriteAll(manifest(), Flipped(good, 8 * (good.find('\n', fr) - 1)));
  auto opened = CorpusShards::Open(shards());
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(absl::StrContains(opened.status().message(),
                                "the manifest is corrupted and none of its lines can be trusted"))
      << opened.status();
  // The seal cut off: format 2 says there must be one.
  WriteAll(manifest(), good.substr(0, good.rfind("crc32c\t")));
  opened = CorpusShards::Open(shards());
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(absl::StrContains(opened.status().message(), "the manifest is truncated or damaged"))
      << opened.status();
}

TEST_F(DataIntegrityTest, FormatOneManifestIsReadWithAWarning) {
  WriteAll(manifest(), FormatOne(ReadAll(manifest())));
  ::testing::internal::CaptureStderr();
  const auto opened = CorpusShards::Open(shards());
  const std::string warned = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_FALSE(opened->manifest_sealed());
  EXPECT_TRUE(absl::StrContains(warned, "manifest.tsv is format 1, written before shard manifests "
                                        "carried their own CRC-32C"))
      << warned;
  EXPECT_TRUE(opened->CheckLanguageTags([&](const std::string& c) { return vocab_->TagId(c); },
                                        vocab_->path())
                  .ok());
}

TEST_F(DataIntegrityTest, TagIdsAreCheckedAgainstTheVocabulary) {
  // One flipped bit in an unsealed manifest: fr's tag 262 becomes 263 (ja's).
  // Sealed again, as a manifest written for another vocabulary would be.
  const std::string good = ReadAll(manifest());
  const std::string body = WithTag(good.substr(0, good.rfind("crc32c\t")), "fr", 263);
  for (const std::string& text : {SealShardManifest(body), FormatOne(body)}) {
    WriteAll(manifest(), text);
    const auto opened = CorpusShards::Open(shards());
    ASSERT_TRUE(opened.ok()) << opened.status();
    const absl::Status tags = opened->CheckLanguageTags(
        [&](const std::string& c) { return vocab_->TagId(c); }, vocab_->path());
    ASSERT_FALSE(tags.ok());
    EXPECT_TRUE(absl::StrContains(
        tags.message(),
        absl::StrCat("manifest.tsv:9: language fr has tag id 263, the tag of ja (<2ja>), but in "
                     "the vocabulary ",
                     vocab_->path(), " <2fr> is id 262")))
        << tags;
    EXPECT_TRUE(absl::StrContains(tags.message(), "pipetrain data shard --corpus " + corpus()))
        << tags;

    // The loader refuses it when given the vocabulary's tags.
    LoaderOptions options;
    options.max_tokens = 2000;
    options.max_len = 100;
    options.vocab_path = vocab_->path();
    options.language_tag_id = [&](const std::string& c) { return vocab_->TagId(c); };
    const auto loader = MultilingualLoader::Open(shards(), options);
    ASSERT_FALSE(loader.ok());
    EXPECT_TRUE(absl::StrContains(loader.status().message(), "language fr has tag id 263"))
        << loader.status();
  }
  WriteAll(manifest(), good);
  LoaderOptions options;
  options.max_tokens = 2000;
  options.max_len = 100;
  options.vocab_path = vocab_->path();
  options.language_tag_id = [&](const std::string& c) { return vocab_->TagId(c); };
  EXPECT_TRUE(MultilingualLoader::Open(shards(), options).ok());
}

// A run's vocabulary copy: KeepVocabularyWithRun writes it with its checksum
// file; every flipped bit of either is then refused by the check translate
// and eval make, and by a resume.
class RunVocabularyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_.mutable_model()->set_vocab_size(8000);
    spec_.mutable_train()->mutable_corpus()->set_dir(dir_ / "corpus");
    spec_.mutable_train()->set_output_dir(dir_ / "run");
    std::filesystem::create_directories(CorpusShardDir(spec_));
    // Any bytes do: the checksum does not parse the model. 3 KiB of a
    // protobuf-like mix, so flips land in text and in binary fields alike.
    std::mt19937 rng(5);
    std::string model;
    for (int i = 0; i < 3072; ++i) {
      model.push_back(i % 4 == 0 ? static_cast<char>('a' + rng() % 26) : static_cast<char>(rng()));
    }
    WriteAll(CorpusVocabPath(spec_), model);
    ASSERT_TRUE(KeepVocabularyWithRun(spec_, /*resuming=*/false).ok());
  }

  std::string RunVocab() const { return RunVocabPath(spec_.train().output_dir()); }

  testing::TempDir dir_{"data_integrity_test"};
  RunSpec spec_;
};

TEST_F(RunVocabularyTest, CopyCarriesItsChecksum) {
  EXPECT_EQ(ReadAll(RunVocab()), ReadAll(CorpusVocabPath(spec_)));
  const std::string sidecar = ReadAll(RunVocab() + ".crc32c");
  EXPECT_TRUE(absl::StartsWith(sidecar, "crc32c\t0x")) << sidecar;
  EXPECT_TRUE(absl::EndsWith(sidecar, "\tbytes\t3072\n")) << sidecar;
  const auto check = CheckVocabChecksum(RunVocab(), "do this");
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(*check, VocabCheck::kVerified);
  EXPECT_TRUE(KeepVocabularyWithRun(spec_, /*resuming=*/true).ok());
}

TEST_F(RunVocabularyTest, EveryFlippedBitOfTheVocabularyOrItsChecksumIsRefused) {
  for (const std::string& path : {RunVocab(), RunVocab() + ".crc32c"}) {
    const std::string good = ReadAll(path);
    std::mt19937_64 rng(17);
    const int kFlips = path == RunVocab() ? 240 : 60;
    for (int i = 0; i < kFlips; ++i) {
      const size_t bit = rng() % (8 * good.size());
      WriteAll(path, Flipped(good, bit));
      const auto check = CheckVocabChecksum(RunVocab(), "do this");
      ASSERT_FALSE(check.ok()) << path << " bit " << bit << " was accepted";
      EXPECT_TRUE(absl::StrContains(check.status().message(),
                                    RunVocab() + " does not match its checksum file " +
                                        RunVocab() + ".crc32c"))
          << check.status();
      EXPECT_TRUE(absl::EndsWith(check.status().message(), "; do this")) << check.status();
      if (path == RunVocab() && i < 20) {
        // A resume refuses the damaged copy, naming it and the fix.
        const absl::Status resumed = KeepVocabularyWithRun(spec_, /*resuming=*/true);
        ASSERT_FALSE(resumed.ok());
        EXPECT_TRUE(absl::StrContains(resumed.message(), "does not match its checksum file"))
            << resumed;
        EXPECT_TRUE(absl::StrContains(resumed.message(),
                                      "cp " + CorpusVocabPath(spec_) + " " + RunVocab()))
            << resumed;
      }
    }
    WriteAll(path, good);
  }
  EXPECT_TRUE(CheckVocabChecksum(RunVocab(), "").ok());
}

TEST_F(RunVocabularyTest, MissingOrDamagedChecksumOfAnIntactCopyIsRewritten) {
  const std::string sidecar = ReadAll(RunVocab() + ".crc32c");
  std::filesystem::remove(RunVocab() + ".crc32c");
  auto check = CheckVocabChecksum(RunVocab(), "");
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(*check, VocabCheck::kNoChecksum);
  // A run started before checksums were kept gets one when it resumes.
  ASSERT_TRUE(KeepVocabularyWithRun(spec_, /*resuming=*/true).ok());
  EXPECT_EQ(ReadAll(RunVocab() + ".crc32c"), sidecar);
  // A damaged checksum beside a copy equal to the corpus's is rewritten.
  WriteAll(RunVocab() + ".crc32c", Flipped(sidecar, 70));
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(KeepVocabularyWithRun(spec_, /*resuming=*/true).ok());
  EXPECT_TRUE(absl::StrContains(::testing::internal::GetCapturedStderr(), "rewriting"));
  EXPECT_EQ(ReadAll(RunVocab() + ".crc32c"), sidecar);
  // A fresh run replaces a damaged copy.
  WriteAll(RunVocab(), Flipped(ReadAll(RunVocab()), 100));
  ASSERT_TRUE(KeepVocabularyWithRun(spec_, /*resuming=*/false).ok());
  EXPECT_EQ(ReadAll(RunVocab()), ReadAll(CorpusVocabPath(spec_)));
  EXPECT_EQ(*CheckVocabChecksum(RunVocab(), ""), VocabCheck::kVerified);
}

}  // namespace
}  // namespace pipetrain
