// The shard writer and reader: every sentence and every distinct pair of
// every direction survives the round trip (checked against the corpus read
// independently with MultiwayCorpus), both id widths, language selection,
// missing tags, and damaged or mismatched files refused with errors that
// name the file.
#include "core/data/token_shards.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/data/multiway_corpus.h"
#include "core/data/sentencepiece_model.h"
#include "core/data/token_shard_writer.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/shard_fixtures.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::FakeVocabulary;

const std::vector<std::string> kAllLanguages = {"de", "en", "fr", "ja", "pt_BR"};

class TokenShardsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = (fs::temp_directory_path() /
             absl::StrCat("token_shards_test_", getpid(), "_", info->name()))
                .string();
    fs::remove_all(root_);
    corpus_ = root_ + "/corpus";
    shards_ = root_ + "/shards";
    testing::WriteTestCorpus(corpus_, testing::MakeTestCorpus(300, 12, 5));
  }
  void TearDown() override { fs::remove_all(root_); }

  absl::StatusOr<ShardSummary> Write(const FakeVocabulary& vocab,
                                     std::vector<std::string> languages = {}) {
    ShardOptions options;
    options.languages = std::move(languages);
    options.progress = false;
    options.threads = 2;
    return WriteCorpusShards(corpus_, vocab.Get(), options, shards_);
  }

  std::string root_, corpus_, shards_;
};

// Every split's sentences decode to their texts, and every direction's
// pairs are exactly MultiwayCorpus::Pairs (as sets, and as many).
void ExpectRoundTrip(const std::string& corpus_dir, const CorpusShards& shards,
                     const std::vector<std::string>& languages) {
  for (int split = 0; split < kNumSplits; ++split) {
    SCOPED_TRACE(SplitName(split));
    const MultiwayCorpus corpus = *ReadMultiwayCorpus(
        absl::StrCat(corpus_dir, "/", std::string(SplitName(split)), ".messages.tsv"));
    const TokenShard& tokens = shards.tokens(split);
    std::set<std::pair<std::string, std::string>> sentences;  // (language, text), distinct
    for (int64_t i = 0; i < tokens.size(); ++i) {
      std::vector<int32_t> ids;
      tokens.AppendTokens(i, &ids);
      ASSERT_EQ(static_cast<int64_t>(ids.size()), tokens.Length(i));
      const std::string text = FakeVocabulary::Decode(ids);
      const std::string& lang = shards.languages()[tokens.Language(i)].code;
      EXPECT_TRUE(absl::StartsWith(text, lang + " ")) << text;
      EXPECT_TRUE(sentences.emplace(lang, text).second) << "encoded twice: " << text;
      if (split == 0) {
        EXPECT_FALSE(tokens.has_text());
      } else {
        EXPECT_EQ(tokens.Text(i), text);
      }
    }
    std::set<std::pair<std::string, std::string>> expected_sentences;
    for (const auto& message : corpus.messages) {
      for (const auto& [lang, text] : message) {
        const std::string& code = corpus.languages[lang];
        if (shards.LanguageIndex(code) >= 0) expected_sentences.emplace(code, text);
      }
    }
    EXPECT_EQ(sentences, expected_sentences);

    for (const std::string& a : languages) {
      for (const std::string& b : languages) {
        if (a >= b) continue;
        const PairGroup* group =
            shards.pairs(split).FindGroup(shards.LanguageIndex(a), shards.LanguageIndex(b));
        ASSERT_NE(group, nullptr) << a << "-" << b;
        std::set<std::pair<std::string, std::string>> got;
        for (int64_t i = 0; i < group->count; ++i) {
          const auto pair = *shards.pairs(split).Pair(*group, i, tokens);
          std::vector<int32_t> x, y;
          tokens.AppendTokens(pair.first, &x);
          tokens.AppendTokens(pair.second, &y);
          got.emplace(FakeVocabulary::Decode(x), FakeVocabulary::Decode(y));
        }
        const auto expected = corpus.Pairs(a, b);
        EXPECT_EQ(group->count, static_cast<int64_t>(expected.size())) << a << "-" << b;
        EXPECT_EQ(got, std::set(expected.begin(), expected.end())) << a << "-" << b;
      }
    }
  }
}

TEST_F(TokenShardsTest, RoundTripKeepsEverySentenceAndDistinctPair) {
  const FakeVocabulary vocab(root_ + "/fake.model", kAllLanguages);
  const auto summary = Write(vocab);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->languages, 5);
  EXPECT_EQ(summary->directions, 20);
  const auto shards = CorpusShards::Open(shards_);
  ASSERT_TRUE(shards.ok()) << shards.status();
  EXPECT_EQ(shards->tokens(0).header().token_bytes, 2u);
  EXPECT_EQ(shards->vocab_size(), vocab.vocab_size());
  for (const ShardLanguage& l : shards->languages()) EXPECT_EQ(l.tag_id, vocab.TagId(l.code));
  ExpectRoundTrip(corpus_, *shards, kAllLanguages);

  // The summary's pair counts agree with directions.tsv, the builder's own count.
  const auto directions = *ReadDirections(corpus_ + "/directions.tsv");
  std::array<int64_t, kNumSplits> listed{};
  for (const CorpusDirection& d : directions) {
    for (int split = 0; split < kNumSplits; ++split) listed[split] += d.pairs[split];
  }
  EXPECT_EQ(summary->pairs, listed);
  // No temporary file is left behind.
  for (const auto& entry : fs::directory_iterator(shards_)) {
    EXPECT_FALSE(absl::EndsWith(entry.path().string(), ".tmp")) << entry.path();
  }
}

TEST_F(TokenShardsTest, LargeVocabularyUsesInt32Ids) {
  const FakeVocabulary vocab(root_ + "/fake.model", kAllLanguages, /*tag_base=*/70000);
  ASSERT_TRUE(Write(vocab).ok());
  const auto shards = CorpusShards::Open(shards_);
  ASSERT_TRUE(shards.ok()) << shards.status();
  EXPECT_EQ(shards->tokens(1).header().token_bytes, 4u);
  EXPECT_EQ(shards->languages()[0].tag_id, 70000);
  ExpectRoundTrip(corpus_, *shards, kAllLanguages);
}

TEST_F(TokenShardsTest, KeepsOnlyTheChosenLanguages) {
  const FakeVocabulary vocab(root_ + "/fake.model", kAllLanguages);
  const auto summary = Write(vocab, {"ja", "de"});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->languages, 2);
  EXPECT_EQ(summary->directions, 2);
  const auto shards = CorpusShards::Open(shards_);
  ASSERT_TRUE(shards.ok()) << shards.status();
  ASSERT_EQ(shards->languages().size(), 2u);
  EXPECT_EQ(shards->languages()[0].code, "de");
  EXPECT_EQ(shards->languages()[1].code, "ja");
  EXPECT_EQ(shards->pairs(0).groups().size(), 1u);
  ExpectRoundTrip(corpus_, *shards, {"de", "ja"});
}

TEST_F(TokenShardsTest, UnknownLanguageAndMissingTagAreErrors) {
  const FakeVocabulary vocab(root_ + "/fake.model", kAllLanguages);
  const auto unknown = Write(vocab, {"de", "xx"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "'xx'")) << unknown.status();
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "languages.txt")) << unknown.status();

  const FakeVocabulary no_ja(root_ + "/no_ja.model", {"de", "en", "fr", "pt_BR"});
  const auto missing = Write(no_ja);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "'ja'")) << missing.status();
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "no_ja.model")) << missing.status();
  // Without ja the same vocabulary is fine.
  EXPECT_TRUE(Write(no_ja, {"de", "en"}).ok());
}

// Rewrites `path` through `edit`.
void EditFile(const std::string& path, const std::function<void(std::string*)>& edit) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  edit(&bytes);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void ExpectOpenFails(const std::string& dir, const std::string& file, const std::string& why) {
  const auto shards = CorpusShards::Open(dir);
  ASSERT_FALSE(shards.ok()) << "opened despite damage to " << file;
  EXPECT_TRUE(absl::StrContains(shards.status().message(), file)) << shards.status();
  EXPECT_TRUE(absl::StrContains(shards.status().message(), why)) << shards.status();
}

TEST_F(TokenShardsTest, DamagedFilesAreRefusedNamingTheFile) {
  const FakeVocabulary vocab(root_ + "/fake.model", kAllLanguages);
  ASSERT_TRUE(Write(vocab).ok());
  const std::string pristine = root_ + "/pristine";
  fs::copy(shards_, pristine);
  auto restore = [&] {
    fs::remove_all(shards_);
    fs::copy(pristine, shards_);
  };
  ASSERT_TRUE(CorpusShards::Open(shards_).ok());

  const std::string tokens = shards_ + "/train.tokens";
  EditFile(tokens, [](std::string* b) { b->resize(b->size() - 5); });
  ExpectOpenFails(shards_, "train.tokens", "truncated");
  restore();
  EditFile(tokens, [](std::string* b) { b->append(8, '\0'); });
  ExpectOpenFails(shards_, "train.tokens", "size is");
  restore();
  EditFile(tokens, [](std::string* b) { b->resize(30); });
  ExpectOpenFails(shards_, "train.tokens", "header");
  restore();
  EditFile(tokens, [](std::string* b) { (*b)[0] = 'X'; });
  ExpectOpenFails(shards_, "train.tokens", "magic");
  restore();
  // The second token offset (8 bytes after the header's first): made huge.
  EditFile(tokens, [](std::string* b) { (*b)[64 + 8 + 6] = 0x7f; });
  ExpectOpenFails(shards_, "train.tokens", "offset");
  restore();
  // A version this build does not know.
  EditFile(shards_ + "/dev.tokens", [](std::string* b) { (*b)[8] = 9; });
  ExpectOpenFails(shards_, "dev.tokens", "version");
  restore();

  EditFile(shards_ + "/test.pairs", [](std::string* b) { b->resize(b->size() - 8); });
  ExpectOpenFails(shards_, "test.pairs", "truncated");
  restore();
  // A pair list from another split: written for another tokens file.
  fs::copy_file(pristine + "/dev.pairs", shards_ + "/test.pairs",
                fs::copy_options::overwrite_existing);
  ExpectOpenFails(shards_, "test.pairs", "another");
  restore();
  // A pair pointing at a sentence of the wrong language is caught when read.
  {
    EditFile(shards_ + "/train.pairs", [](std::string* b) {
      PairShardHeader h;
      std::memcpy(&h, b->data(), sizeof(h));
      const size_t first_pair = sizeof(PairShardHeader) + h.groups * sizeof(PairGroup);
      std::memcpy(b->data() + first_pair, b->data() + first_pair + 4, 4);  // a := b
    });
    const auto shards = CorpusShards::Open(shards_);
    ASSERT_TRUE(shards.ok()) << shards.status();
    const PairGroup& g = shards->pairs(0).groups()[0];
    const auto pair = shards->pairs(0).Pair(g, 0, shards->tokens(0));
    ASSERT_FALSE(pair.ok());
    EXPECT_TRUE(absl::StrContains(pair.status().message(), "train.pairs")) << pair.status();
  }
  restore();
  fs::remove(shards_ + "/dev.pairs");
  ExpectOpenFails(shards_, "dev.pairs", "cannot open");
  restore();
  fs::remove(shards_ + "/manifest.tsv");
  ExpectOpenFails(shards_, "manifest.tsv", "pipetrain data shard");
  restore();
  ASSERT_TRUE(CorpusShards::Open(shards_).ok());
}

TEST_F(TokenShardsTest, AnotherVocabularyIsRejected) {
  const FakeVocabulary vocab(root_ + "/fake.model", kAllLanguages);
  ASSERT_TRUE(Write(vocab).ok());
  const auto shards = CorpusShards::Open(shards_);
  ASSERT_TRUE(shards.ok()) << shards.status();
  EXPECT_TRUE(shards->CheckVocabulary(vocab.path()).ok());

  // Same size and tags, different file: the ids could mean other pieces.
  const FakeVocabulary other(root_ + "/other.model", kAllLanguages, 260, "retrained");
  const absl::Status mismatch = shards->CheckVocabulary(other.path());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_TRUE(absl::StrContains(mismatch.message(), "other.model")) << mismatch;
  EXPECT_TRUE(absl::StrContains(mismatch.message(), "fake.model")) << mismatch;
  EXPECT_TRUE(absl::StrContains(mismatch.message(), "pipetrain data shard")) << mismatch;

  // A tokens file of one vocabulary under the manifest of another.
  const std::string first = root_ + "/first";
  fs::copy(shards_, first);
  ASSERT_TRUE(WriteCorpusShards(corpus_, other.Get(), testing::QuietShardOptions(), shards_).ok());
  fs::copy_file(first + "/dev.tokens", shards_ + "/dev.tokens",
                fs::copy_options::overwrite_existing);
  ExpectOpenFails(shards_, "dev.tokens", "vocabulary");
}

// `pipetrain data vocab` then `data shard` on the test corpus: the shards
// hold what the real vocabulary encodes, and its tags.
TEST_F(TokenShardsTest, DataShardCommandWithARealVocabulary) {
  if (testing::RunCommand("command -v spm_train").exit_code != 0) {
    GTEST_SKIP() << "spm_train is not installed (deploy/setup.sh installs sentencepiece)";
  }
  const testing::RunResult vocab =
      testing::RunPipetrain(absl::StrCat("data vocab --corpus ", corpus_, " --vocab_size 400"));
  ASSERT_EQ(vocab.exit_code, 0) << vocab.output;
  const testing::RunResult shard =
      testing::RunPipetrain(absl::StrCat("data shard --corpus ", corpus_, " --languages de,en,fr"));
  ASSERT_EQ(shard.exit_code, 0) << shard.output;
  EXPECT_TRUE(absl::StrContains(shard.output, "languages=3 directions=6")) << shard.output;
  EXPECT_TRUE(absl::StrContains(shard.output, "sentences encoded")) << shard.output;

  const auto shards = CorpusShards::Open(corpus_ + "/shards");
  ASSERT_TRUE(shards.ok()) << shards.status();
  EXPECT_TRUE(shards->CheckVocabulary(corpus_ + "/spm.model").ok());
  const auto model = SentencePieceModel::Load(corpus_ + "/spm.model");
  ASSERT_TRUE(model.ok()) << model.status();
  for (const ShardLanguage& l : shards->languages()) {
    EXPECT_EQ(l.tag_id, model->PieceToId(LanguageTagPiece(l.code))) << l.code;
  }
  const TokenShard& dev = shards->tokens(1);
  ASSERT_GT(dev.size(), 10);
  for (int64_t i = 0; i < dev.size(); ++i) {
    std::vector<int32_t> ids;
    dev.AppendTokens(i, &ids);
    EXPECT_EQ(ids, model->Encode(std::string(dev.Text(i))));
    EXPECT_EQ(model->Decode(ids), dev.Text(i));
  }

  const testing::RunResult missing = testing::RunPipetrain(
      absl::StrCat("data shard --corpus ", corpus_, " --vocab ", root_, "/none.model"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(missing.output, "none.model")) << missing.output;
  EXPECT_TRUE(absl::StrContains(missing.output, "data vocab")) << missing.output;
}

TEST_F(TokenShardsTest, HashAndHexAreStable) {
  const std::string path = root_ + "/abc";
  fs::create_directories(root_);
  std::ofstream(path) << "a";
  // FNV-1a 64 of "a".
  EXPECT_EQ(*HashFileContents(path), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(HashHex(0xaf63dc4c8601ec8cull), "af63dc4c8601ec8c");
  EXPECT_EQ(HashHex(1), "0000000000000001");
  EXPECT_FALSE(HashFileContents(root_ + "/missing").ok());
}

}  // namespace
}  // namespace pipetrain
