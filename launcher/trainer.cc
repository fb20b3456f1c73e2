#include "launcher/trainer.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/device.h"
#include "core/status_macros.h"
#include "launcher/step_common.h"

namespace pipetrain {

Trainer::Trainer(const RunSpec& spec, std::unique_ptr<TransformerModel> model,
                 std::unique_ptr<StepData> data)
    : spec_(spec), data_(std::move(data)), model_(std::move(model)) {
  const Tensor& params = model_->params().flat_params();
  adam_m_ = Tensor::Zeros(params.shape(), params.dtype(), params.device());
  adam_v_ = Tensor::Zeros(params.shape(), params.dtype(), params.device());
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const RunSpec& spec) {
  const std::string& name = spec.train().dtype();
  const DType dtype = name == "f64" ? DType::kF64 : name == "bf16" ? DType::kBF16 : DType::kF32;
  const Device device = spec.train().device() == "cuda" ? Device::kCuda : Device::kCpu;
  PT_ASSIGN_OR_RETURN(std::unique_ptr<TransformerModel> model,
                      TransformerModel::Create(spec.model(), dtype, spec.train().seed(), device));
  PT_ASSIGN_OR_RETURN(std::unique_ptr<StepData> data, OpenStepData(spec));
  return std::unique_ptr<Trainer>(new Trainer(spec, std::move(model), std::move(data)));
}

absl::StatusOr<std::string> Trainer::SaveCheckpoint(const std::string& run_dir) const {
  const CheckpointInfo info{.step = step_,
                            .spec = spec_,
                            .data_cursor = data_->Cursor(),
                            .rng_seed = spec_.train().seed(),
                            .keep_last = spec_.train().keep_checkpoints()};
  return SaveParameterStore(run_dir, info, model_->params(), adam_m_, adam_v_);
}

absl::Status Trainer::RestoreCheckpoint(const CheckpointReader& reader) {
  PT_RETURN_IF_ERROR(LoadParameterStore(reader, &model_->params(), &adam_m_, &adam_v_));
  model_->params().RefreshComputeCopy();
  step_ = reader.step();
  const std::string& cursor = reader.manifest().data_cursor();
  if (!cursor.empty()) PT_RETURN_IF_ERROR(data_->Seek(cursor));
  return absl::OkStatus();
}

std::string Trainer::ParamsDigest() const { return pipetrain::ParamsDigest(model_->params()); }

absl::StatusOr<StepMetrics> Trainer::Step() {
  const auto start = std::chrono::steady_clock::now();
  const TrainConfig& train = spec_.train();
  const int microbatches = std::max(train.microbatches(), 1);
  StepMetrics metrics;
  PT_ASSIGN_OR_RETURN(std::vector<Batch> batches,
                      DrawStepBatches(spec_, *data_, step_, microbatches, &metrics));
  const Device device = model_->params().device();
  if (device != Device::kCpu) {
    // Token ids and labels go to the device; lengths stay on the host, where
    // the attention masks are validated.
    for (Batch& batch : batches) {
      for (Tensor* t : {&batch.src_ids, &batch.tgt_in, &batch.labels}) {
        if (!t->defined()) continue;
        PT_ASSIGN_OR_RETURN(*t, CopyToDevice(*t, device));
      }
    }
  }
  // Every micro-batch's gradient is scaled by the whole step's token count,
  // so the accumulated gradient is the mean over the step's tokens.
  const double grad_scale = 1.0 / static_cast<double>(std::max<int64_t>(metrics.target_tokens, 1));

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
  // Per-parameter sums of squares added in layer order: the same sum a
  // pipeline forms from its stages' lists, so the norm agrees to the bit.
  double squares = 0;
  for (double s : model_->stage().GradSquares(/*skip_embedding=*/false)) squares += s;
  ParameterStore& store = model_->params();
  metrics.step = ++step_;
  PT_ASSIGN_OR_RETURN(metrics.grad_norm, ApplyUpdate(train, step_, squares, store.flat_params(),
                                                     store.flat_grads(), adam_m_, adam_v_));
  store.RefreshComputeCopy();  // the bf16 weights the next step computes with
  metrics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PT_RETURN_IF_ERROR(FinishMetrics(train, loss_sum, nll_sum, &metrics));
  return metrics;
}

}  // namespace pipetrain
