#include "launcher/step_data.h"

#include "core/data/synthetic_task.h"

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

}  // namespace

std::unique_ptr<StepData> MakeSyntheticStepData(const RunSpec& spec) {
  return std::make_unique<SyntheticStepData>(spec);
}

absl::StatusOr<std::unique_ptr<StepData>> OpenStepData(const RunSpec& spec) {
  if (spec.train().corpus().dir().empty()) return MakeSyntheticStepData(spec);
  return absl::UnimplementedError("train.corpus: the corpus sampler is not wired in yet");
}

}  // namespace pipetrain
