#include "launcher/trainer/early_update.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/data/collate.h"
#include "core/status_macros.h"
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
  PT_ASSIGN_OR_RETURN(std::unique_ptr<StepData> data, OpenStepData(spec));
  PT_ASSIGN_OR_RETURN(std::vector<SentencePair> pairs, data->PairsForStep(0, 1));
  if (pairs.size() > kMaxPairs) pairs.resize(kMaxPairs);
  PT_ASSIGN_OR_RETURN(probe->batch_, Collate(spec.model().kind(), pairs));
  // Measured in f32 on the CPU. θ_0 is initialised in the training precision
  // (what the trainer started from) and then widened or rounded to f32.
  PT_ASSIGN_OR_RETURN(probe->model_,
                      TransformerModel::Create(spec.model(), DType::kF32, spec.train().seed()));
  const std::string& precision = spec.train().dtype();
  if (precision == "f64" || precision == "bf16") {
    PT_ASSIGN_OR_RETURN(
        std::unique_ptr<TransformerModel> trained_precision,
        TransformerModel::Create(spec.model(), precision == "f64" ? DType::kF64 : DType::kBF16,
                                 spec.train().seed()));
    const Tensor initial = trained_precision->params().flat_params().To(DType::kF32);
    Tensor& flat = probe->model_->params().flat_params();
    std::copy_n(initial.data<float>(), flat.numel(), flat.data<float>());
  }
  PT_ASSIGN_OR_RETURN(probe->initial_, probe->Output());
  probe->tokens_ = probe->initial_.dim(0);
  PT_CHECK_ARG(probe->tokens_ > 0, "early_update_steps: step 0's batch has no target token");
  double squares = 0;
  const float* h0 = probe->initial_.data<float>();
  for (int64_t i = 0; i < probe->initial_.numel(); ++i) squares += double(h0[i]) * h0[i];
  probe->initial_rms_ = std::sqrt(squares / probe->tokens_);
  return probe;
}

absl::StatusOr<Tensor> EarlyUpdateProbe::Output() {
  ModelSaved saved;
  const StepContext ctx{.step = 0, .training = false};
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

absl::StatusOr<double> EarlyUpdateProbe::Distance(const Tensor& flat_params) {
  Tensor& mine = model_->params().flat_params();
  PT_CHECK_ARG(flat_params.numel() == mine.numel(), "early update: got ", flat_params.numel(),
               " parameters, the model has ", mine.numel());
  const Tensor host =
      flat_params.device() == Device::kCpu ? flat_params : flat_params.CopyTo(Device::kCpu);
  const Tensor f32 = host.dtype() == DType::kF32 ? host : host.To(DType::kF32);
  std::copy_n(f32.data<float>(), mine.numel(), mine.data<float>());
  PT_ASSIGN_OR_RETURN(const Tensor now, Output());
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
