#include "launcher/trainer/step_data.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/multilingual_loader.h"
#include "core/data/sentencepiece_model.h"
#include "core/data/synthetic_task.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/trainer/corpus_preparation.h"

namespace pipetrain {
namespace {

class SyntheticStepData : public StepData {
 public:
  explicit SyntheticStepData(const RunSpec& spec) : spec_(spec) {}
  absl::StatusOr<std::vector<SentencePair>> PairsForStep(int64_t step, int min_pairs) override {
    return SyntheticStepPairs(spec_.model(), spec_.train(), step, min_pairs);
  }

 private:
  RunSpec spec_;
};

// The corpus sampler: one loader batch per step. The loader guarantees
// min_pairs per batch (it is opened with the step's micro-batch count).
class CorpusStepData : public StepData {
 public:
  explicit CorpusStepData(std::unique_ptr<MultilingualLoader> loader)
      : loader_(std::move(loader)) {}

  absl::StatusOr<std::vector<SentencePair>> PairsForStep(int64_t step, int min_pairs) override {
    PT_ASSIGN_OR_RETURN(std::vector<SentencePair> pairs, loader_->NextStepPairs());
    if (static_cast<int>(pairs.size()) < min_pairs) {
      return absl::InternalError(absl::StrCat("the corpus loader gave ", pairs.size(),
                                              " pairs for step ", step, ", fewer than the ",
                                              min_pairs, " micro-batches"));
    }
    return pairs;
  }
  std::string Cursor() const override { return loader_->cursor().ToString(); }
  absl::Status Seek(const std::string& text) override {
    PT_ASSIGN_OR_RETURN(const LoaderCursor cursor, LoaderCursor::Parse(text));
    return loader_->Seek(cursor);
  }

 private:
  std::unique_ptr<MultilingualLoader> loader_;
};

// What the run samples, said once at start: how many of the L·(L−1)
// directions of its languages have training pairs, how the pairs are spread
// and how temperature flattens that, and every direction that has none (it
// is never drawn: said, not silently dropped).
void LogDirections(const MultilingualLoader& loader, double temperature, const std::string& where) {
  const std::vector<std::string>& languages = loader.languages();
  const int64_t possible =
      static_cast<int64_t>(languages.size()) * (static_cast<int64_t>(languages.size()) - 1);
  std::set<std::pair<std::string, std::string>> sampled;
  std::vector<const LoaderDirection*> drawn;
  int64_t pairs = 0;
  for (const LoaderDirection& d : loader.directions()) {
    if (d.pairs[0] == 0) continue;
    sampled.insert({d.src, d.tgt});
    drawn.push_back(&d);
    pairs += d.pairs[0];
  }
  LogInfo("data", "sampling %d of %d directions among %d languages (T=%g) from %s", drawn.size(),
          possible, languages.size(), temperature, where);
  if (!drawn.empty()) {
    std::sort(drawn.begin(), drawn.end(), [](const LoaderDirection* a, const LoaderDirection* b) {
      return a->pairs[0] < b->pairs[0];
    });
    const LoaderDirection& low = *drawn.front();
    const LoaderDirection& mid = *drawn[drawn.size() / 2];
    const LoaderDirection& high = *drawn.back();
    LogInfo("data",
            "train pairs: %d in all; per direction min %d (%s-%s), median %d, max %d (%s-%s); "
            "drawn with p from %.2e to %.2e",
            pairs, low.pairs[0], low.src, low.tgt, mid.pairs[0], high.pairs[0], high.src, high.tgt,
            low.probability, high.probability);
  }
  std::vector<std::string> missing;
  for (const std::string& a : languages) {
    for (const std::string& b : languages) {
      if (a != b && !sampled.count({a, b})) missing.push_back(absl::StrCat(a, "-", b));
    }
  }
  if (!missing.empty()) {
    constexpr size_t kListed = 40;
    const size_t shown = std::min(missing.size(), kListed);
    LogInfo(
        "data", "%d directions have no training pairs in this corpus and are never drawn: %s%s",
        missing.size(),
        absl::StrJoin(missing.begin(), missing.begin() + static_cast<std::ptrdiff_t>(shown), " "),
        missing.size() > shown ? absl::StrCat(" (and ", missing.size() - shown, " more)")
                               : std::string());
  }
}

}  // namespace

std::unique_ptr<StepData> MakeSyntheticStepData(const RunSpec& spec) {
  return std::make_unique<SyntheticStepData>(spec);
}

absl::StatusOr<std::unique_ptr<StepData>> OpenStepData(const RunSpec& spec) {
  const TrainConfig& train = spec.train();
  if (train.corpus().dir().empty()) return MakeSyntheticStepData(spec);
  LoaderOptions options;
  options.temperature = train.corpus().temperature();
  options.max_tokens = train.tokens_per_batch();
  options.max_len = train.corpus().max_length();
  options.min_pairs = std::max(train.microbatches(), 1) * std::max(train.data_parallel(), 1);
  options.seed = train.seed();
  options.kind = spec.model().kind();
  options.languages.assign(train.corpus().languages().begin(), train.corpus().languages().end());
  options.vocab_path = CorpusVocabPath(spec);
  // The shards' tag ids are checked against the vocabulary's <2xx> pieces
  // on every rank that reads them (PrepareCorpus did so on rank 0 only).
  PT_ASSIGN_OR_RETURN(const SentencePieceModel vocab, SentencePieceModel::Load(options.vocab_path));
  options.language_tag_id = [&vocab](const std::string& code) {
    return vocab.PieceToId(LanguageTagPiece(code));
  };
  PT_ASSIGN_OR_RETURN(std::unique_ptr<MultilingualLoader> loader,
                      MultilingualLoader::Open(CorpusShardDir(spec), options));
  LogDirections(*loader, options.temperature, CorpusShardDir(spec));
  return std::unique_ptr<StepData>(new CorpusStepData(std::move(loader)));
}

}  // namespace pipetrain
