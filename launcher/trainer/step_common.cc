#include "launcher/trainer/step_common.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/optim/adamw.h"
#include "core/optim/grad_clip.h"
#include "core/optim/lr_schedule.h"
#include "core/status_macros.h"

namespace pipetrain {

absl::StatusOr<std::vector<Batch>> DrawStepBatches(const RunSpec& spec, StepData& data,
                                                   int64_t step, int microbatches,
                                                   StepMetrics* metrics) {
  PT_ASSIGN_OR_RETURN(const std::vector<SentencePair> pairs, data.PairsForStep(step, microbatches));
  PT_ASSIGN_OR_RETURN(std::vector<Batch> batches,
                      CollateMicrobatches(spec.model().kind(), pairs, microbatches));
  metrics->sentences = static_cast<int>(pairs.size());
  for (const Batch& b : batches) {
    PT_RETURN_IF_ERROR(CheckBatchIds(b, spec.model().vocab_size()));
    metrics->target_tokens += b.LabelTokens();
    if (b.src_lengths.defined()) {
      for (int64_t i = 0; i < b.src_lengths.numel(); ++i) {
        metrics->source_tokens += b.src_lengths.data<int32_t>()[i];
      }
    }
  }
  return batches;
}

absl::Status ClipGradients(const TrainConfig& train, double squares, Tensor& grads) {
  return ClipToNorm(grads, squares, train.clip_norm()).status();
}

AdamWHyper AdamWHyperFor(const TrainConfig& train, int64_t update) {
  return AdamWHyper{.lr = LearningRate(train, update),
                    .beta1 = train.adamw().beta1(),
                    .beta2 = train.adamw().beta2(),
                    .epsilon = train.adamw().epsilon(),
                    .weight_decay = train.adamw().weight_decay()};
}

void FinishMetrics(const TrainConfig& train, double loss_sum, double nll_sum,
                   StepMetrics* metrics) {
  const double tokens = static_cast<double>(std::max<int64_t>(metrics->target_tokens, 1));
  metrics->loss = loss_sum / tokens;
  metrics->nll = nll_sum / tokens;
  metrics->lr = LearningRate(train, metrics->step);
}

}  // namespace pipetrain
