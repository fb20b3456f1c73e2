#include "core/data/multilingual_loader.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/philox.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

// Streams of the loader, apart from the synthetic task's (0xDA7A0000) and
// from dropout (small layer numbers).
constexpr uint32_t kDrawStream = 0xDA7A1000u;
constexpr uint32_t kShuffleStream = 0xDA7A2000u;
// A pool that keeps nothing after this many draws means max_len excludes
// (nearly) every pair; say so instead of drawing forever.
constexpr int64_t kHopelessDraws = 1000000;

PhiloxStream PoolStream(uint64_t seed, int64_t pool, uint32_t stream) {
  return PhiloxStream(RngKey{.seed = seed,
                             .step = static_cast<uint32_t>(pool),
                             .layer = stream,
                             .microbatch = static_cast<uint32_t>(pool >> 32) & 0xFFFFFu});
}

uint64_t Fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

int64_t PaddedBatchTokens(ModelKind kind, int64_t pairs, int64_t max_src, int64_t max_tgt,
                          int64_t max_sum) {
  // Mirrors PairTokens (collate.h) for a pair of the batch's longest lengths.
  switch (kind) {
    case ENCODER_ONLY:
      return pairs * (max_src + max_tgt);
    case DECODER_ONLY:
      return pairs * (max_sum + 2);
    default:
      return pairs * (max_src + 2 * (max_tgt + 1));
  }
}

absl::StatusOr<std::unique_ptr<MultilingualLoader>> MultilingualLoader::Open(
    const std::string& shard_dir, const LoaderOptions& options) {
  PT_CHECK_ARG(options.temperature > 0, "data loader: temperature ", options.temperature,
               " must be > 0");
  PT_CHECK_ARG(options.max_len >= 2, "data loader: max_len ", options.max_len,
               " must be >= 2 (the tag and one token)");
  PT_CHECK_ARG(options.min_pairs >= 1, "data loader: min_pairs ", options.min_pairs,
               " must be >= 1");
  PT_CHECK_ARG(options.pool_batches >= 1, "data loader: pool_batches ", options.pool_batches,
               " must be >= 1");
  const int64_t worst = PaddedBatchTokens(options.kind, options.min_pairs, options.max_len,
                                          options.max_len, 2 * int64_t{options.max_len});
  PT_CHECK_ARG(options.max_tokens >= worst, "data loader: max_tokens ", options.max_tokens,
               " cannot hold ", options.min_pairs, " pairs of max_len ", options.max_len,
               " (that needs ", worst,
               " padded tokens); raise the token budget or lower max_len or the micro-batches");
  PT_ASSIGN_OR_RETURN(CorpusShards shards, CorpusShards::Open(shard_dir));
  if (!options.vocab_path.empty()) {
    PT_RETURN_IF_ERROR(shards.CheckVocabulary(options.vocab_path));
    if (options.language_tag_id) {
      PT_RETURN_IF_ERROR(shards.CheckLanguageTags(options.language_tag_id, options.vocab_path));
    }
  }
  std::unique_ptr<MultilingualLoader> loader(new MultilingualLoader(std::move(shards), options));
  const CorpusShards& s = loader->shards_;

  // Languages: the requested ones, in shard order.
  std::vector<bool> keep(s.languages().size(), options.languages.empty());
  for (const std::string& code : options.languages) {
    const int32_t index = s.LanguageIndex(code);
    if (index < 0) {
      std::vector<std::string> known;
      for (const ShardLanguage& l : s.languages()) known.push_back(l.code);
      return absl::InvalidArgumentError(
          absl::StrCat("data loader: language '", code, "' is not in the shards of ", shard_dir,
                       " (they hold ", absl::StrJoin(known, ","), ")"));
    }
    keep[index] = true;
  }
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i]) loader->languages_.push_back(s.languages()[i].code);
  }

  // Directions: both orientations of every kept language pair.
  for (const PairGroup& g : s.pairs(0).groups()) {
    if (!keep[g.lang_a] || !keep[g.lang_b]) continue;
    for (const bool flip : {false, true}) {
      LoaderDirection d;
      d.src_language = static_cast<int32_t>(flip ? g.lang_b : g.lang_a);
      d.tgt_language = static_cast<int32_t>(flip ? g.lang_a : g.lang_b);
      d.src = s.languages()[d.src_language].code;
      d.tgt = s.languages()[d.tgt_language].code;
      for (int split = 0; split < kNumSplits; ++split) {
        const PairGroup* group = s.pairs(split).FindGroup(g.lang_a, g.lang_b);
        d.pairs[split] = group != nullptr ? group->count : 0;
      }
      loader->directions_.push_back(std::move(d));
    }
  }
  std::sort(loader->directions_.begin(), loader->directions_.end(),
            [](const LoaderDirection& x, const LoaderDirection& y) {
              return std::tie(x.src, x.tgt) < std::tie(y.src, y.tgt);
            });
  std::vector<int64_t> train_pairs;
  for (size_t d = 0; d < loader->directions_.size(); ++d) {
    train_pairs.push_back(loader->directions_[d].pairs[0]);
  }
  absl::StatusOr<DirectionSampler> sampler =
      DirectionSampler::Create(train_pairs, options.temperature);
  if (!sampler.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data loader over ", shard_dir, " (languages ",
                                                   absl::StrJoin(loader->languages_, ","),
                                                   "): ", sampler.status().message()));
  }
  for (size_t d = 0; d < loader->directions_.size(); ++d) {
    loader->directions_[d].probability = sampler->probability(static_cast<int64_t>(d));
  }
  loader->sampler_ = std::make_unique<DirectionSampler>(*std::move(sampler));
  loader->check_ = loader->Fingerprint();
  return loader;
}

uint64_t MultilingualLoader::Fingerprint() const {
  // Everything that decides which batches come out, as text: %a prints the
  // temperature exactly.
  std::string key = absl::StrCat("loader-v1|vocab=", HashHex(shards_.vocab_hash()));
  for (int split = 0; split < kNumSplits; ++split) {
    absl::StrAppend(&key, "|", shards_.tokens(split).size(), ",",
                    shards_.tokens(split).header().tokens, ",", shards_.pairs(split).total_pairs());
  }
  char temperature[64];
  std::snprintf(temperature, sizeof(temperature), "%a", options_.temperature);
  absl::StrAppend(&key, "|languages=", absl::StrJoin(languages_, ","), "|T=", temperature,
                  "|max_tokens=", options_.max_tokens, "|max_len=", options_.max_len,
                  "|min_pairs=", options_.min_pairs, "|seed=", options_.seed,
                  "|pool=", options_.pool_batches, "|kind=", static_cast<int>(options_.kind));
  return Fnv1a(key);
}

int32_t MultilingualLoader::TagId(const std::string& code) const {
  const int32_t index = shards_.LanguageIndex(code);
  return index < 0 ? -1 : shards_.languages()[index].tag_id;
}

absl::Status MultilingualLoader::BuildPool(int64_t pool) {
  const TokenShard& tokens = shards_.tokens(0);
  const PairShard& pairs = shards_.pairs(0);
  const PhiloxStream draw = PoolStream(options_.seed, pool, kDrawStream);
  const int64_t target = int64_t{options_.pool_batches} * options_.max_tokens;

  // Draw until the pool holds `target` unpadded tokens. Draw i uses the four
  // words of Philox block i: two pick the direction, two the pair.
  std::vector<Drawn> drawn;
  int64_t tokens_in_pool = 0;
  for (uint64_t i = 0; tokens_in_pool < target; ++i) {
    if (drawn.empty() && i >= static_cast<uint64_t>(kHopelessDraws)) {
      return absl::InvalidArgumentError(absl::StrCat("data loader: none of ", kHopelessDraws,
                                                     " pairs drawn fits max_len ", options_.max_len,
                                                     " tokens per side; raise it"));
    }
    const double u = UnitFromBits(draw.Bits(4 * i), draw.Bits(4 * i + 1));
    const LoaderDirection& d = directions_[sampler_->Pick(u)];
    const PairGroup* group = pairs.FindGroup(d.src_language, d.tgt_language);
    const uint64_t bits = uint64_t{draw.Bits(4 * i + 2)} << 32 | draw.Bits(4 * i + 3);
    PT_ASSIGN_OR_RETURN(const auto pair,
                        pairs.Pair(*group, IndexFromBits(bits, group->count), tokens));
    const bool flip = d.src_language != static_cast<int32_t>(group->lang_a);
    Drawn x{.src_sentence = flip ? pair.second : pair.first,
            .tgt_sentence = flip ? pair.first : pair.second,
            .tag = shards_.languages()[d.tgt_language].tag_id,
            .src_len = static_cast<int32_t>(
                std::min<int64_t>(1 + tokens.Length(flip ? pair.second : pair.first), INT32_MAX)),
            .tgt_len = static_cast<int32_t>(
                std::min<int64_t>(tokens.Length(flip ? pair.first : pair.second), INT32_MAX))};
    ++stats_.drawn;
    if (x.src_len > options_.max_len || x.tgt_len > options_.max_len) {
      ++stats_.too_long;
      continue;
    }
    tokens_in_pool +=
        PaddedBatchTokens(options_.kind, 1, x.src_len, x.tgt_len, int64_t{x.src_len} + x.tgt_len);
    drawn.push_back(x);
  }

  // Sort by length so a batch pads little. Decoder-only models pad the
  // concatenation, so its length is the key; otherwise the longer side, then
  // the target (on the gettext corpus this pads 10.5% of a batch, against
  // 11.4% for target-then-source and 19.5% for the PairTokens cost). Draw
  // order breaks ties, so the order is total and the pool a pure function
  // of its draws.
  std::vector<int64_t> order(drawn.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  const ModelKind kind = options_.kind;
  auto key = [&](int64_t i) {
    const Drawn& x = drawn[i];
    const int32_t primary =
        kind == DECODER_ONLY ? x.src_len + x.tgt_len : std::max(x.src_len, x.tgt_len);
    return std::tuple(primary, x.tgt_len, i);
  };
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) < key(b); });

  // Cut greedily: a batch closes when the next pair would push its padded
  // size over the budget. Open() checked that any min_pairs pairs fit, so
  // only the pool's last batch can be short; it is dropped.
  batches_.clear();
  std::vector<Drawn> batch;
  int64_t max_src = 0, max_tgt = 0, max_sum = 0;
  for (int64_t i : order) {
    const Drawn& x = drawn[i];
    const int64_t s = std::max<int64_t>(max_src, x.src_len);
    const int64_t t = std::max<int64_t>(max_tgt, x.tgt_len);
    const int64_t st = std::max<int64_t>(max_sum, int64_t{x.src_len} + x.tgt_len);
    if (!batch.empty() && PaddedBatchTokens(kind, static_cast<int64_t>(batch.size()) + 1, s, t,
                                            st) > options_.max_tokens) {
      batches_.push_back(std::move(batch));
      batch.clear();
      max_src = x.src_len;
      max_tgt = x.tgt_len;
      max_sum = int64_t{x.src_len} + x.tgt_len;
    } else {
      max_src = s;
      max_tgt = t;
      max_sum = st;
    }
    batch.push_back(x);
  }
  if (static_cast<int64_t>(batch.size()) >= options_.min_pairs) {
    batches_.push_back(std::move(batch));
  } else {
    stats_.tail_dropped += static_cast<int64_t>(batch.size());
  }
  if (batches_.empty()) {
    return absl::InternalError(absl::StrCat("data loader: pool ", pool, " made no batch"));
  }

  // Shuffle the batch order (Fisher-Yates on a stream of its own), so long
  // and short batches alternate rather than run in length order.
  const PhiloxStream shuffle = PoolStream(options_.seed, pool, kShuffleStream);
  for (int64_t i = static_cast<int64_t>(batches_.size()) - 1; i > 0; --i) {
    const uint64_t bits = uint64_t{shuffle.Bits(2 * static_cast<uint64_t>(i))} << 32 |
                          shuffle.Bits(2 * static_cast<uint64_t>(i) + 1);
    std::swap(batches_[i], batches_[IndexFromBits(bits, i + 1)]);
  }
  pool_ = pool;
  next_batch_ = 0;
  ++stats_.pools;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SentencePair>> MultilingualLoader::NextStepPairs() {
  if (pool_ < 0 || next_batch_ >= static_cast<int64_t>(batches_.size())) {
    PT_RETURN_IF_ERROR(BuildPool(pool_ + 1));
  }
  const std::vector<Drawn>& batch = batches_[next_batch_++];
  ++steps_;
  const TokenShard& tokens = shards_.tokens(0);
  std::vector<SentencePair> pairs(batch.size());
  int64_t max_src = 0, max_tgt = 0, max_sum = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    SentencePair& p = pairs[i];
    p.src.reserve(batch[i].src_len);
    p.src.push_back(batch[i].tag);
    tokens.AppendTokens(batch[i].src_sentence, &p.src);
    tokens.AppendTokens(batch[i].tgt_sentence, &p.tgt);
    max_src = std::max<int64_t>(max_src, p.src.size());
    max_tgt = std::max<int64_t>(max_tgt, p.tgt.size());
    max_sum = std::max<int64_t>(max_sum, p.src.size() + p.tgt.size());
    stats_.real_tokens += PairTokens(options_.kind, p);
  }
  ++stats_.batches;
  stats_.padded_tokens += PaddedBatchTokens(options_.kind, static_cast<int64_t>(pairs.size()),
                                            max_src, max_tgt, max_sum);
  return pairs;
}

LoaderCursor MultilingualLoader::cursor() const {
  LoaderCursor c{.pool = pool_, .batch = next_batch_, .steps = steps_, .check = check_};
  // Always name the next batch to return: past a pool's end that is the
  // first batch of the next pool.
  if (pool_ < 0 || next_batch_ >= static_cast<int64_t>(batches_.size())) {
    c.pool = pool_ + 1;
    c.batch = 0;
  }
  return c;
}

absl::Status MultilingualLoader::Seek(const LoaderCursor& cursor) {
  if (cursor.check != check_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data cursor '", cursor.ToString(),
        "' was saved by a loader with other shards or options "
        "(fingerprint ",
        HashHex(cursor.check), ", this loader ", HashHex(check_),
        "): seed, temperature, max_tokens, max_len, min_pairs, pool_batches, model kind, "
        "languages and the shards must match to resume the same batches"));
  }
  PT_RETURN_IF_ERROR(BuildPool(cursor.pool));
  if (cursor.batch > static_cast<int64_t>(batches_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("data cursor '", cursor.ToString(), "': pool ",
                                                   cursor.pool, " has only ", batches_.size(),
                                                   " batches"));
  }
  next_batch_ = cursor.batch;
  steps_ = cursor.steps;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EvalPair>> MultilingualLoader::DevPairs(const std::string& src,
                                                                   const std::string& tgt,
                                                                   int split, int64_t k) const {
  PT_CHECK_ARG(split >= 0 && split < kNumSplits, "split ", split,
               " is not 0 (train), 1 (dev) or 2 (test)");
  const auto known = [&](const std::string& code) {
    return std::find(languages_.begin(), languages_.end(), code) != languages_.end();
  };
  PT_CHECK_ARG(known(src) && known(tgt) && src != tgt, "direction ", src, "-", tgt,
               " is not one of the loader's: its languages are ", absl::StrJoin(languages_, ","));
  const int32_t a = shards_.LanguageIndex(src), b = shards_.LanguageIndex(tgt);
  const TokenShard& tokens = shards_.tokens(split);
  const PairShard& pairs = shards_.pairs(split);
  std::vector<EvalPair> out;
  const PairGroup* group = pairs.FindGroup(a, b);
  if (group == nullptr) return out;  // no pair of these languages in any split
  const bool flip = a != static_cast<int32_t>(group->lang_a);
  const int32_t tag = shards_.languages()[b].tag_id;
  for (int64_t i = 0; i < group->count && static_cast<int64_t>(out.size()) < k; ++i) {
    PT_ASSIGN_OR_RETURN(const auto pair, pairs.Pair(*group, i, tokens));
    const int64_t s = flip ? pair.second : pair.first;
    const int64_t t = flip ? pair.first : pair.second;
    if (1 + tokens.Length(s) > options_.max_len || tokens.Length(t) > options_.max_len) continue;
    EvalPair e;
    e.src_text = std::string(tokens.Text(s));
    e.tgt_text = std::string(tokens.Text(t));
    e.ids.src.push_back(tag);
    tokens.AppendTokens(s, &e.ids.src);
    tokens.AppendTokens(t, &e.ids.tgt);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace pipetrain
