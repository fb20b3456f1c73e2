// The loader over shards of a small synthetic corpus: every batch within the
// token budget and every row a real pair of its direction with the right
// tag; too-long pairs skipped; direction frequencies following p ∝ n^(1/T);
// the same seed giving the same batches and another seed others; a saved
// cursor resuming the stream bit for bit in a fresh loader; dev pairs with
// texts; and the options and cursors that must be refused.
#include "core/data/multilingual_loader.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/data/collate.h"
#include "core/data/multiway_corpus.h"
#include "core/data/token_shard_writer.h"
#include "gtest/gtest.h"
#include "tests/testing/shard_fixtures.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::FakeVocabulary;

const std::vector<std::string> kLanguages = {"de", "en", "fr", "ja", "pt_BR"};

// One corpus and its shards for the whole suite (writing them is the slow part).
class MultilingualLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(
        (fs::temp_directory_path() / absl::StrCat("multilingual_loader_test_", getpid())).string());
    fs::remove_all(*root_);
    testing::WriteTestCorpus(Corpus(), testing::MakeTestCorpus(1500, 24, 3));
    vocab_ = new FakeVocabulary(*root_ + "/fake.model", kLanguages);
    const auto summary =
        WriteCorpusShards(Corpus(), vocab_->Get(), testing::QuietShardOptions(), Shards());
    ASSERT_TRUE(summary.ok()) << summary.status();
    for (int split = 0; split < kNumSplits; ++split) {
      const MultiwayCorpus corpus = *ReadMultiwayCorpus(
          absl::StrCat(Corpus(), "/", std::string(SplitName(split)), ".messages.tsv"));
      pairs_[split] = new std::map<std::pair<std::string, std::string>,
                                   std::set<std::pair<std::string, std::string>>>();
      for (const std::string& a : kLanguages) {
        for (const std::string& b : kLanguages) {
          if (a == b) continue;
          const auto p = corpus.Pairs(a, b);
          (*pairs_[split])[{a, b}] = std::set(p.begin(), p.end());
        }
      }
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete vocab_;
    for (auto* p : pairs_) delete p;
    delete root_;
  }
  static std::string Corpus() { return *root_ + "/corpus"; }
  static std::string Shards() { return *root_ + "/shards"; }

  static LoaderOptions Options() {
    LoaderOptions o;
    o.max_tokens = 2000;
    o.max_len = 160;
    o.min_pairs = 2;
    o.seed = 17;
    o.pool_batches = 6;
    return o;
  }

  static std::unique_ptr<MultilingualLoader> Open(const LoaderOptions& options) {
    auto loader = MultilingualLoader::Open(Shards(), options);
    EXPECT_TRUE(loader.ok()) << loader.status();
    return loader.ok() ? *std::move(loader) : nullptr;
  }

  // The language a decoded text belongs to (texts start with their code).
  static std::string LanguageOf(const std::string& text) { return text.substr(0, text.find(' ')); }

  // The target language of a row, from its tag.
  static std::string TagLanguage(int32_t tag) {
    for (const std::string& code : kLanguages) {
      if (vocab_->TagId(code) == tag) return code;
    }
    return "?";
  }

  static std::string* root_;
  static FakeVocabulary* vocab_;
  static std::map<std::pair<std::string, std::string>,
                  std::set<std::pair<std::string, std::string>>>* pairs_[kNumSplits];
};

std::string* MultilingualLoaderTest::root_ = nullptr;
FakeVocabulary* MultilingualLoaderTest::vocab_ = nullptr;
std::map<std::pair<std::string, std::string>, std::set<std::pair<std::string, std::string>>>*
    MultilingualLoaderTest::pairs_[kNumSplits] = {};

TEST_F(MultilingualLoaderTest, BatchesStayWithinBudgetAndHoldRealPairs) {
  for (ModelKind kind : {ENCODER_DECODER, DECODER_ONLY}) {
    LoaderOptions options = Options();
    options.kind = kind;
    const auto loader = Open(options);
    ASSERT_NE(loader, nullptr);
    int64_t rows = 0;
    for (int step = 0; step < 40; ++step) {
      const auto pairs = loader->NextStepPairs();
      ASSERT_TRUE(pairs.ok()) << pairs.status();
      ASSERT_GE(pairs->size(), 2u);
      // The padded size, measured on the collated tensors.
      const auto batch = Collate(kind, *pairs);
      ASSERT_TRUE(batch.ok()) << batch.status();
      int64_t padded;
      if (kind == DECODER_ONLY) {
        // [B, max(s+t)+1] input: PairTokens counts s + t + 2 per row.
        padded = batch->tgt_in.shape()[0] * (batch->tgt_in.shape()[1] + 1);
      } else {
        padded = batch->src_ids.numel() + batch->tgt_in.numel() + batch->labels.numel();
      }
      EXPECT_LE(padded, options.max_tokens) << "step " << step;
      for (const SentencePair& p : *pairs) {
        ASSERT_GE(p.src.size(), 2u);
        EXPECT_LE(p.src.size(), 160u);
        EXPECT_LE(p.tgt.size(), 160u);
        const std::string tgt_lang = TagLanguage(p.src[0]);
        const std::string src_text = FakeVocabulary::Decode(p.src, 1);
        const std::string tgt_text = FakeVocabulary::Decode(p.tgt);
        const std::string src_lang = LanguageOf(src_text);
        EXPECT_EQ(LanguageOf(tgt_text), tgt_lang) << "tag says " << tgt_lang;
        EXPECT_TRUE(((*pairs_[0])[{src_lang, tgt_lang}].count({src_text, tgt_text})))
            << src_lang << "->" << tgt_lang << " pair not in the corpus: " << src_text << " | "
            << tgt_text;
        ++rows;
      }
    }
    EXPECT_GT(rows, 200);
    const LoaderStats& stats = loader->stats();
    EXPECT_EQ(stats.batches, 40);
    // Length bucketing keeps padding small: most padded tokens are real
    // (0.77 sorted, 0.61 unsorted for encoder-decoder: the fixture's two
    // sides have independent lengths, unlike real translations).
    EXPECT_GT(static_cast<double>(stats.real_tokens) / stats.padded_tokens, 0.72)
        << stats.real_tokens << " of " << stats.padded_tokens;
  }
}

TEST_F(MultilingualLoaderTest, PaddedSizeMatchesPairTokens) {
  const SentencePair p{.src = std::vector<int32_t>(7, 5), .tgt = std::vector<int32_t>(4, 5)};
  for (ModelKind kind : {ENCODER_DECODER, DECODER_ONLY, ENCODER_ONLY}) {
    EXPECT_EQ(PaddedBatchTokens(kind, 1, 7, 4, 11), PairTokens(kind, p)) << kind;
    EXPECT_EQ(PaddedBatchTokens(kind, 3, 7, 4, 11), 3 * PairTokens(kind, p)) << kind;
  }
}

TEST_F(MultilingualLoaderTest, LongPairsAreSkippedAndCounted) {
  LoaderOptions options = Options();
  options.max_len = 60;
  const auto loader = Open(options);
  ASSERT_NE(loader, nullptr);
  for (int step = 0; step < 20; ++step) {
    const auto pairs = loader->NextStepPairs();
    ASSERT_TRUE(pairs.ok()) << pairs.status();
    for (const SentencePair& p : *pairs) {
      EXPECT_LE(p.src.size(), 60u);
      EXPECT_LE(p.tgt.size(), 60u);
    }
  }
  EXPECT_GT(loader->stats().too_long, 0);
  EXPECT_GT(loader->stats().drawn, loader->stats().too_long);
}

// Direction frequencies over many batches against the loader's own
// probabilities, and those against n^(1/T) over the shard counts.
TEST_F(MultilingualLoaderTest, DirectionFrequenciesFollowTemperature) {
  for (double t : {1.0, 5.0, 100.0}) {
    LoaderOptions options = Options();
    options.temperature = t;
    options.max_len = 1000;  // nothing skipped, so draws are the sampler's alone
    options.max_tokens = 20000;
    options.pool_batches = 50;
    const auto loader = Open(options);
    ASSERT_NE(loader, nullptr);
    const auto& directions = loader->directions();
    ASSERT_EQ(directions.size(), 20u);
    double total = 0;
    for (const LoaderDirection& d : directions) {
      total += std::pow(static_cast<double>(d.pairs[0]), 1.0 / t);
    }
    std::map<std::pair<std::string, std::string>, int64_t> seen;
    int64_t rows = 0;
    while (rows < 30000) {
      const auto pairs = loader->NextStepPairs();
      ASSERT_TRUE(pairs.ok()) << pairs.status();
      for (const SentencePair& p : *pairs) {
        ++seen[{LanguageOf(FakeVocabulary::Decode(p.src, 1)), TagLanguage(p.src[0])}];
        ++rows;
      }
    }
    double chi2 = 0;
    for (const LoaderDirection& d : directions) {
      EXPECT_NEAR(d.probability, std::pow(static_cast<double>(d.pairs[0]), 1.0 / t) / total, 1e-12);
      const double expected = d.probability * static_cast<double>(rows);
      const double diff = static_cast<double>(seen[{d.src, d.tgt}]) - expected;
      chi2 += diff * diff / expected;
    }
    // 19 degrees of freedom: the 99.9% quantile is 43.8. The pool's tail
    // batch (< min_pairs pairs) is the only other loss, a handful of rows.
    EXPECT_LT(chi2, 43.8) << "T=" << t;
    const auto& [largest, smallest] = std::minmax_element(
        directions.begin(), directions.end(),
        [](const LoaderDirection& x, const LoaderDirection& y) { return x.pairs[0] > y.pairs[0]; });
    const double ratio = largest->probability / smallest->probability;
    if (t == 1.0) {
      EXPECT_GT(ratio, 10.0);
    }
    if (t == 100.0) {
      EXPECT_LT(ratio, 1.1);
    }
  }
}

std::vector<std::vector<SentencePair>> Take(MultilingualLoader& loader, int n) {
  std::vector<std::vector<SentencePair>> out;
  for (int i = 0; i < n; ++i) {
    auto pairs = loader.NextStepPairs();
    EXPECT_TRUE(pairs.ok()) << pairs.status();
    out.push_back(pairs.ok() ? *std::move(pairs) : std::vector<SentencePair>{});
  }
  return out;
}

bool Same(const std::vector<std::vector<SentencePair>>& a,
          const std::vector<std::vector<SentencePair>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (size_t j = 0; j < a[i].size(); ++j) {
      if (a[i][j].src != b[i][j].src || a[i][j].tgt != b[i][j].tgt) return false;
    }
  }
  return true;
}

TEST_F(MultilingualLoaderTest, SameSeedSameBatchesOtherSeedOthers) {
  const auto a = Open(Options());
  const auto b = Open(Options());
  LoaderOptions other = Options();
  other.seed = 18;
  const auto c = Open(other);
  ASSERT_TRUE(a && b && c);
  const auto first = Take(*a, 30);
  EXPECT_TRUE(Same(first, Take(*b, 30)));
  EXPECT_FALSE(Same(first, Take(*c, 30)));
  // Batches of one pool come in shuffled, not length, order.
  std::vector<size_t> lengths;
  for (int i = 0; i < 5; ++i) lengths.push_back(first[i].front().tgt.size());
  EXPECT_FALSE(std::is_sorted(lengths.begin(), lengths.end()));
}

TEST_F(MultilingualLoaderTest, CursorResumesBitForBit) {
  const auto first = Open(Options());
  ASSERT_NE(first, nullptr);
  // 6 pools' worth of batches per pool is about 6-8: 37 steps cross pools.
  Take(*first, 37);
  const std::string saved = first->cursor().ToString();
  EXPECT_GT(first->cursor().pool, 2) << saved;
  EXPECT_EQ(first->cursor().steps, 37);
  const auto expected = Take(*first, 25);

  const auto fresh = Open(Options());
  ASSERT_NE(fresh, nullptr);
  const auto cursor = LoaderCursor::Parse(saved);
  ASSERT_TRUE(cursor.ok()) << cursor.status();
  ASSERT_TRUE(fresh->Seek(*cursor).ok());
  EXPECT_EQ(fresh->cursor().ToString(), saved);
  EXPECT_TRUE(Same(Take(*fresh, 25), expected));
  EXPECT_EQ(fresh->cursor(), first->cursor());

  // At a pool boundary the cursor names the next pool's first batch.
  const auto walker = Open(Options());
  int64_t pool = walker->cursor().pool;
  for (int i = 0; i < 40 && walker->cursor().batch != 0; ++i) Take(*walker, 1);
  for (int i = 0; i < 40 && (walker->cursor().batch != 0 || walker->cursor().pool == pool); ++i) {
    Take(*walker, 1);
  }
  ASSERT_EQ(walker->cursor().batch, 0);
  pool = walker->cursor().pool;
  const LoaderCursor boundary = walker->cursor();
  const auto after = Take(*walker, 3);
  const auto resumed = Open(Options());
  ASSERT_TRUE(resumed->Seek(boundary).ok());
  EXPECT_TRUE(Same(Take(*resumed, 3), after));

  // Seeking backwards replays too.
  ASSERT_TRUE(first->Seek(*cursor).ok());
  EXPECT_TRUE(Same(Take(*first, 25), expected));
}

TEST_F(MultilingualLoaderTest, ForeignOrMalformedCursorsAreRefused) {
  const auto loader = Open(Options());
  Take(*loader, 3);
  LoaderOptions other = Options();
  other.max_tokens = 2100;
  const auto different = Open(other);
  const absl::Status refused = different->Seek(loader->cursor());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.message(), "other shards or options")) << refused;

  LoaderCursor far = loader->cursor();
  far.batch = 100000;
  EXPECT_FALSE(loader->Seek(far).ok());

  for (const std::string& text :
       {std::string(""), std::string("pool=1 batch=2"),
        std::string("pipetrain-cursor v2 pool=1 batch=2 steps=3 check=0000000000000001"),
        std::string("pipetrain-cursor v1 pool=-1 batch=2 steps=3 check=0000000000000001"),
        std::string("pipetrain-cursor v1 pool=1 batch=x steps=3 check=0000000000000001"),
        std::string("pipetrain-cursor v1 pool=1 batch=2 steps=3 check=12"),
        std::string("pipetrain-cursor v1 batch=2 pool=1 steps=3 check=0000000000000001")}) {
    const auto parsed = LoaderCursor::Parse(text);
    EXPECT_FALSE(parsed.ok()) << text;
    if (!parsed.ok()) {
      EXPECT_TRUE(absl::StrContains(parsed.status().message(), "data cursor")) << parsed.status();
    }
  }
  const LoaderCursor c{.pool = 12, .batch = 3, .steps = 99, .check = 0xfedcba9876543210ull};
  EXPECT_EQ(c.ToString(), "pipetrain-cursor v1 pool=12 batch=3 steps=99 check=fedcba9876543210");
  EXPECT_EQ(*LoaderCursor::Parse(c.ToString() + "\n"), c);
}

TEST_F(MultilingualLoaderTest, DevPairsCarryTextsAndIds) {
  const auto loader = Open(Options());
  ASSERT_NE(loader, nullptr);
  for (const auto& [src, tgt] : {std::pair<std::string, std::string>{"en", "de"}, {"ja", "fr"}}) {
    for (int split : {1, 2}) {
      const auto dev = loader->DevPairs(src, tgt, split, 10);
      ASSERT_TRUE(dev.ok()) << dev.status();
      const auto& expected = (*pairs_[split])[{src, tgt}];
      EXPECT_EQ(dev->size(), std::min<size_t>(10, expected.size())) << src << "-" << tgt;
      EXPECT_GT(dev->size(), 0u);
      std::set<std::pair<std::string, std::string>> distinct;
      for (const EvalPair& e : *dev) {
        EXPECT_EQ(e.ids.src[0], vocab_->TagId(tgt));
        EXPECT_EQ(FakeVocabulary::Decode(e.ids.src, 1), e.src_text);
        EXPECT_EQ(FakeVocabulary::Decode(e.ids.tgt), e.tgt_text);
        EXPECT_TRUE((expected.count({e.src_text, e.tgt_text}))) << e.src_text;
        distinct.emplace(e.src_text, e.tgt_text);
      }
      EXPECT_EQ(distinct.size(), dev->size());
      // Deterministic, and a prefix of a longer request.
      const auto again = loader->DevPairs(src, tgt, split, 1000);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->size(), expected.size());
      for (size_t i = 0; i < dev->size(); ++i) {
        EXPECT_EQ((*again)[i].src_text, (*dev)[i].src_text);
        EXPECT_EQ((*again)[i].ids.tgt, (*dev)[i].ids.tgt);
      }
    }
  }
  EXPECT_FALSE(loader->DevPairs("en", "xx", 1, 5).ok());
  EXPECT_FALSE(loader->DevPairs("en", "en", 1, 5).ok());
  EXPECT_FALSE(loader->DevPairs("en", "de", 3, 5).ok());
}

TEST_F(MultilingualLoaderTest, LanguageSubsetAndBadOptions) {
  LoaderOptions options = Options();
  options.languages = {"fr", "de"};
  const auto subset = Open(options);
  ASSERT_NE(subset, nullptr);
  EXPECT_EQ(subset->languages(), (std::vector<std::string>{"de", "fr"}));
  ASSERT_EQ(subset->directions().size(), 2u);
  EXPECT_EQ(subset->directions()[0].src, "de");
  EXPECT_EQ(subset->directions()[0].tgt, "fr");
  EXPECT_NEAR(subset->directions()[0].probability, 0.5, 1e-12);
  for (const auto& step : Take(*subset, 10)) {
    for (const SentencePair& p : step) {
      const std::string src = LanguageOf(FakeVocabulary::Decode(p.src, 1));
      EXPECT_TRUE(src == "de" || src == "fr") << src;
    }
  }

  auto expect_error = [](const LoaderOptions& o, const std::string& words) {
    const auto loader = MultilingualLoader::Open(Shards(), o);
    ASSERT_FALSE(loader.ok()) << words;
    EXPECT_TRUE(absl::StrContains(loader.status().message(), words)) << loader.status();
  };
  LoaderOptions o = Options();
  o.languages = {"de", "xx"};
  expect_error(o, "'xx'");
  o = Options();
  o.max_tokens = 500;  // 2 pairs of 160 need 2 * (160 + 2 * 161) = 964
  expect_error(o, "964");
  o = Options();
  o.temperature = 0;
  expect_error(o, "temperature");
  o = Options();
  o.vocab_path = *root_ + "/other.model";
  const FakeVocabulary other(o.vocab_path, kLanguages, 260, "other");
  expect_error(o, "other.model");
  o.vocab_path = vocab_->path();
  EXPECT_TRUE(MultilingualLoader::Open(Shards(), o).ok());
}

}  // namespace
}  // namespace pipetrain
