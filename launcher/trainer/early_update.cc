#include "launcher/trainer/early_update.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/data/collate.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/trainer/step_data.h"
#include "models/model_stage.h"

namespace pipetrain {
namespace {

// The fixed batch is step 0's pairs, at most this many: enough tokens for a
// stable norm, few enough that measuring costs a fraction of a step.
constexpr size_t kMaxPairs = 64;

}  // namespace

absl::StatusOr<std::unique_ptr<EarlyUpdateProbe>> EarlyUpdateProbe::Create(const RunSpec& spec) {
  std::unique_ptr<EarlyUpdateProbe> probe(new EarlyUpdateProbe());
  // A second reader of the run's data: quiet, the trainer's already said
  // what it samples.
  SetLogVerbose(false);
  absl::StatusOr<std::unique_ptr<StepData>> opened = OpenStepData(spec);
  SetLogVerbose(true);
  PT_ASSIGN_OR_RETURN(std::unique_ptr<StepData> data, std::move(opened));
  PT_ASSIGN_OR_RETURN(std::vector<SentencePair> pairs, data->PairsForStep(0, 1));
  if (pairs.size() > kMaxPairs) pairs.resize(kMaxPairs);
  PT_ASSIGN_OR_RETURN(probe->batch_, Collate(spec.model().kind(), pairs));
  // Measured in f32 on the CPU. Initialisation computes every value in
  // double and stores it in the store's dtype, and a bf16 run keeps f32
  // master weights: the f32 model is θ_0 for every training dtype (f64's
  // rounded to f32, as Distance rounds θ_t).
  PT_ASSIGN_OR_RETURN(probe->model_,
                      TransformerModel::Create(spec.model(), DType::kF32, spec.train().seed()));
  probe->model_->SetForwardOnly();
  PT_ASSIGN_OR_RETURN(probe->initial_, probe->Output(/*training_step=*/0));
  probe->tokens_ = probe->initial_.dim(0);
  PT_CHECK_ARG(probe->tokens_ > 0, "early_update_steps: step 0's batch has no target token");
  double squares = 0;
  const float* h0 = probe->initial_.data<float>();
  for (int64_t i = 0; i < probe->initial_.numel(); ++i) squares += double(h0[i]) * h0[i];
  probe->initial_rms_ = std::sqrt(squares / probe->tokens_);
  return probe;
}

absl::StatusOr<Tensor> EarlyUpdateProbe::Output(int64_t training_step) {
  ModelSaved saved;
  // The step matters to BranchNorm, whose branch scale follows it.
  const StepContext ctx{.step = training_step, .training = false};
  PT_RETURN_IF_ERROR(model_->Forward(ctx, batch_, &saved).status());
  const Tensor& hidden = saved.hidden;  // [rows, d], pad rows included
  const int64_t d = hidden.dim(1);
  const int32_t* labels = saved.labels.data<int32_t>();
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < hidden.dim(0); ++r) {
    if (labels[r] != kPadId) rows.push_back(r);
  }
  Tensor kept = Tensor::Empty({static_cast<int64_t>(rows.size()), d}, DType::kF32);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(hidden.data<float>() + rows[i] * d, d, kept.data<float>() + i * d);
  }
  return kept;
}

absl::StatusOr<double> EarlyUpdateProbe::Distance(const Tensor& flat_params,
                                                  int64_t training_step) {
  const absl::Status loaded = model_->params().LoadPackedParams(flat_params);
  PT_CHECK_ARG(loaded.ok(), "early update: ", loaded.message());
  PT_ASSIGN_OR_RETURN(const Tensor now, Output(training_step));
  const float* a = now.data<float>();
  const float* b = initial_.data<float>();
  double squares = 0;
  for (int64_t i = 0; i < now.numel(); ++i) {
    const double diff = double(a[i]) - b[i];
    squares += diff * diff;
  }
  return std::sqrt(squares / tokens_);
}

}  // namespace pipetrain
