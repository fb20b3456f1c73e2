// Where a trainer's sentence pairs come from, step by step: the built-in
// synthetic task, or a real corpus's sampler (train.corpus). Both are
// deterministic for a seed, so every rank of a pipeline that opens the same
// data draws the same global batch without communicating.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_STEP_DATA_H_
#define PIPETRAIN_LAUNCHER_TRAINER_STEP_DATA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/collate.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

class StepData {
 public:
  virtual ~StepData() = default;
  // The pairs of optimizer step `step` (0-based), at least `min_pairs` of
  // them. Steps are asked for in order, each once.
  virtual absl::StatusOr<std::vector<SentencePair>> PairsForStep(int64_t step, int min_pairs) = 0;
  // The position after the last step drawn, for a checkpoint; and going back
  // to such a position. The synthetic task is a function of the step and
  // needs none.
  virtual std::string Cursor() const { return ""; }
  virtual absl::Status Seek(const std::string& cursor) { return absl::OkStatus(); }
};

// The synthetic task of spec.train().synthetic.
std::unique_ptr<StepData> MakeSyntheticStepData(const RunSpec& spec);

// What the spec asks for: the corpus sampler when train.corpus.dir is set
// (the data must be prepared: see launcher/corpus_preparation.h), else the
// synthetic task.
absl::StatusOr<std::unique_ptr<StepData>> OpenStepData(const RunSpec& spec);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_STEP_DATA_H_
