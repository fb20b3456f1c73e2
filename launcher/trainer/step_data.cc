#include "launcher/trainer/step_data.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/data/multilingual_loader.h"
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
  options.vocab_path = CorpusVocabPath(train);
  PT_ASSIGN_OR_RETURN(std::unique_ptr<MultilingualLoader> loader,
                      MultilingualLoader::Open(CorpusShardDir(train), options));
  LogInfo("data", "sampling %d directions among %d languages (T=%g) from %s",
          loader->directions().size(), loader->languages().size(), options.temperature,
          CorpusShardDir(train));
  return std::unique_ptr<StepData>(new CorpusStepData(std::move(loader)));
}

}  // namespace pipetrain
