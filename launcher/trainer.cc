#include "launcher/trainer.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/data/synthetic_task.h"
#include "core/optim/adamw.h"
#include "core/optim/grad_clip.h"
#include "core/optim/lr_schedule.h"
#include "core/status_macros.h"

namespace pipetrain {

Trainer::Trainer(const RunSpec& spec, std::unique_ptr<TransformerModel> model)
    : spec_(spec), model_(std::move(model)) {
  const Tensor& params = model_->params().flat_params();
  adam_m_ = Tensor::Zeros(params.shape(), params.dtype());
  adam_v_ = Tensor::Zeros(params.shape(), params.dtype());
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const RunSpec& spec) {
  const DType dtype = spec.train().dtype() == "f64" ? DType::kF64 : DType::kF32;
  PT_ASSIGN_OR_RETURN(std::unique_ptr<TransformerModel> model,
                      TransformerModel::Create(spec.model(), dtype, spec.train().seed()));
  return std::unique_ptr<Trainer>(new Trainer(spec, std::move(model)));
}

std::string Trainer::ParamsDigest() const { return pipetrain::ParamsDigest(model_->params()); }

absl::StatusOr<StepMetrics> Trainer::Step() {
  const auto start = std::chrono::steady_clock::now();
  const TrainConfig& train = spec_.train();
  const ModelSpec& spec = spec_.model();
  const int microbatches = std::max(train.microbatches(), 1);

  const std::vector<SentencePair> pairs = SyntheticStepPairs(spec, train, step_, microbatches);
  PT_ASSIGN_OR_RETURN(std::vector<Batch> batches,
                      CollateMicrobatches(spec.kind(), pairs, microbatches));
  StepMetrics metrics;
  metrics.sentences = static_cast<int>(pairs.size());
  for (const Batch& b : batches) {
    metrics.target_tokens += b.LabelTokens();
    if (b.src_lengths.defined()) {
      for (int64_t i = 0; i < b.src_lengths.numel(); ++i) {
        metrics.source_tokens += b.src_lengths.data<int32_t>()[i];
      }
    }
  }
  // Every micro-batch's gradient is scaled by the whole step's token count,
  // so the accumulated gradient is the mean over the step's tokens.
  const double grad_scale = 1.0 / static_cast<double>(std::max<int64_t>(metrics.target_tokens, 1));

  ParameterStore& store = model_->params();
  model_->ZeroGrads();
  double loss_sum = 0, nll_sum = 0;
  for (int m = 0; m < microbatches; ++m) {
    StepContext ctx{.seed = train.seed(), .step = step_, .microbatch = m, .training = true};
    ModelSaved saved;
    PT_ASSIGN_OR_RETURN(ops::CrossEntropyStats stats, model_->Forward(ctx, batches[m], &saved));
    loss_sum += stats.loss_sum;
    nll_sum += stats.nll_sum;
    PT_RETURN_IF_ERROR(model_->Backward(ctx, batches[m], &saved, grad_scale));
  }

  Tensor& grads = store.flat_grads();
  // Per-parameter sums of squares added in layer order: the same sum a
  // pipeline forms from its stages' lists, so the norm agrees to the bit.
  double squares = 0;
  for (double s : model_->stage().GradSquares(/*skip_embedding=*/false)) squares += s;
  PT_ASSIGN_OR_RETURN(metrics.grad_norm, ClipToNorm(grads, squares, train.clip_norm()));
  ++step_;
  metrics.step = step_;
  metrics.lr = LearningRate(train, step_);
  const AdamWHyper hyper{.lr = metrics.lr,
                         .beta1 = train.adamw().beta1(),
                         .beta2 = train.adamw().beta2(),
                         .epsilon = train.adamw().epsilon(),
                         .weight_decay = train.adamw().weight_decay()};
  PT_RETURN_IF_ERROR(AdamWStep(hyper, step_, store.flat_params(), grads, adam_m_, adam_v_));

  const double tokens = static_cast<double>(std::max<int64_t>(metrics.target_tokens, 1));
  metrics.loss = loss_sum / tokens;
  metrics.nll = nll_sum / tokens;
  metrics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!std::isfinite(metrics.loss) || !std::isfinite(metrics.grad_norm)) {
    return absl::InternalError(absl::StrCat(
        "training diverged at step ", step_, ": loss=", metrics.loss, " grad_norm=",
        metrics.grad_norm, "; lower train.lr, raise train.warmup_steps or set train.clip_norm"));
  }
  return metrics;
}

}  // namespace pipetrain
