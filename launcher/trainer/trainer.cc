#include "launcher/trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/device.h"
#include "core/gpu_runtime.h"
#include "core/ops/elementwise.h"
#include "core/optim/adamw.h"
#include "core/optim/grad_clip.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/trainer/batch_broadcast.h"
#include "launcher/trainer/stage_layout.h"
#include "launcher/trainer/step_common.h"
#include "models/parameter_store.h"
#include "parallel/executor.h"
#include "parallel/host_staged_communicator.h"
#include "parallel/local_communicator.h"
#include "parallel/nccl_communicator.h"
#include "parallel/schedule_simulator.h"

namespace pipetrain {
namespace {

DType ComputeDType(const std::string& name) {
  return name == "f64" ? DType::kF64 : name == "bf16" ? DType::kBF16 : DType::kF32;
}

// Whether this rank can compute on `device`: the runtime's reason when not.
absl::Status CheckDeviceUsable(Device device) {
  if (device != Device::kCuda) return absl::OkStatus();
  const absl::StatusOr<int> gpu = CurrentCudaDevice();
  if (gpu.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "train.device is \"cuda\" but this rank cannot use a GPU: ", gpu.status().message(),
      ". pipetrain never falls back to the CPU; set train.device to \"cpu\" (or "
      "\"emulated\" to rehearse the GPU layout without a GPU)"));
}

}  // namespace

Trainer::Trainer(const RunSpec& spec, Communicator& world, Topology topology)
    : spec_(spec), world_(&world), topology_(topology) {}

Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const RunSpec& spec) {
  auto local = std::make_unique<LocalCommunicator>();
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Create(spec, *local));
  trainer->owned_world_ = std::move(local);
  return trainer;
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const RunSpec& spec, Communicator& world) {
  const TrainConfig& train = spec.train();
  PT_ASSIGN_OR_RETURN(
      Topology topology,
      MakeTopology(world.size(), world.rank(), train.pipeline().stages(), train.data_parallel()));
  std::unique_ptr<Trainer> trainer(new Trainer(spec, world, topology));
  PT_RETURN_IF_ERROR(trainer->Build());
  return trainer;
}

absl::Status Trainer::Build() {
  const TrainConfig& train = spec_.train();
  const ModelSpec& model = spec_.model();
  if (!ParseDevice(train.device(), &device_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.device \"", train.device(), "\" is not a device; use cpu, cuda or emulated"));
  }
  dtype_ = ComputeDType(train.dtype());

  // Every rank learns whether every rank can use its device, so a machine
  // without a GPU fails on all ranks with the reason instead of leaving some
  // waiting in the first collective.
  const absl::Status usable = CheckDeviceUsable(device_);
  {
    Tensor failed = Tensor::FromVector({usable.ok() ? 0.0 : 1.0}, {1}, DType::kF64);
    PT_RETURN_IF_ERROR(world_->AllReduceSum(failed));
    if (!usable.ok()) return usable;
    if (failed.At(0) > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          static_cast<int>(failed.At(0)), " rank(s) cannot use train.device \"", train.device(),
          "\" (their own messages say why); this rank stops with them"));
    }
  }

  PT_ASSIGN_OR_RETURN(host_groups_, SplitGroups(*world_, topology_));
  if (device_ == Device::kCpu) {
    pipeline_device_ = host_groups_.pipeline.get();
    replicas_device_ = host_groups_.data_parallel.get();
  } else {
    if (device_ == Device::kCuda) {
      // NCCL when every rank has a GPU of its own; host-staged MPI, with a
      // warning, when ranks share one (parallel/nccl_communicator.h).
      PT_ASSIGN_OR_RETURN(device_world_, CreateDeviceCommunicator(*world_));
    } else {
      // The emulated device's tensors travel the GPU's fallback path: staged
      // through host copies, so the copy API is their only door.
      device_world_ = std::make_unique<HostStagedCommunicator>(*world_);
    }
    PT_ASSIGN_OR_RETURN(device_groups_, SplitGroups(*device_world_, topology_));
    pipeline_device_ = device_groups_.pipeline.get();
    replicas_device_ = device_groups_.data_parallel.get();
  }

  // Stage 0 draws the batches (it embeds the source) and sends each stage of
  // its pipeline its replica's micro-batches; the others never open the data.
  if (reads_data()) {
    PT_ASSIGN_OR_RETURN(data_, OpenStepData(spec_));
  }
  const int p = topology_.pipeline_stages;
  const int v = train.pipeline().chunks();
  PT_ASSIGN_OR_RETURN(bounds_, StageBounds(spec_));
  PT_ASSIGN_OR_RETURN(
      schedule_, BuildScheduleFromConfig(train.pipeline(), p, std::max(train.microbatches(), 1)));
  PT_ASSIGN_OR_RETURN(const SimulationResult simulated, SimulateSchedule(schedule_));
  simulated_peak_live_ = simulated.ranks[topology_.stage].peak_live_activations;
  std::vector<std::unique_ptr<ModelStage>> chunks;
  for (int c = 0; c < v; ++c) {
    const int vs = c * p + topology_.stage;
    PT_ASSIGN_OR_RETURN(
        std::unique_ptr<ModelStage> chunk,
        ModelStage::Create(model, dtype_, train.seed(), bounds_[vs], bounds_[vs + 1], device_));
    PT_ASSIGN_OR_RETURN(std::vector<bool> recompute, RecomputeFlags(spec_, vs, bounds_));
    PT_RETURN_IF_ERROR(chunk->SetRecompute(std::move(recompute)));
    const Tensor& params = chunk->params().flat_params();
    adam_m_.push_back(Tensor::Zeros(params.shape(), params.dtype(), params.device()));
    adam_v_.push_back(Tensor::Zeros(params.shape(), params.dtype(), params.device()));
    chunks.push_back(std::move(chunk));
  }
  stage_ = std::make_unique<ModelPipelineStage>(std::move(chunks));
  return absl::OkStatus();
}

int64_t Trainer::parameters() const {
  int64_t n = 0;
  for (const auto& chunk : stage_->chunks()) n += chunk->params().total_elements();
  return n;
}

absl::StatusOr<std::vector<Batch>> Trainer::ToDevice(std::vector<Batch> batches) const {
  if (device_ == Device::kCpu) return batches;
  // Token ids, labels and lengths go to the device once per micro-batch
  // (validated on the host when drawn); every layer's embedding, attention
  // mask and loss then reads them there.
  for (Batch& batch : batches) {
    for (Tensor* t :
         {&batch.src_ids, &batch.tgt_in, &batch.labels, &batch.src_lengths, &batch.tgt_lengths}) {
      if (!t->defined()) continue;
      PT_ASSIGN_OR_RETURN(*t, CopyToDevice(*t, device_));
    }
  }
  return batches;
}

absl::Status Trainer::GradientsFinal(int c, const FlatSegment& span) {
  ready_.push_back({c, span});
  return replicas_device_->OverlapsCollectives() ? StartReadySums() : absl::OkStatus();
}

absl::Status Trainer::ChunkGradientsFinal(int c) {
  // The embedding's partial gradients, final with the chunk's last pass.
  for (int use = 0; use < 3; ++use) {
    const Tensor& partial = stage_->chunks()[c]->embedding_partial(static_cast<EmbeddingUse>(use));
    if (partial.defined()) ready_.push_back({c, FlatSegment{-1 - use, partial.numel()}});
  }
  return replicas_device_->OverlapsCollectives() ? StartReadySums() : absl::OkStatus();
}

absl::Status Trainer::StartReadySums() {
  // Each replica reports the same spans in the same order (the schedule and
  // the layers are the same), so the sums match up across the group.
  for (const auto& [c, span] : ready_) {
    ModelStage& chunk = *stage_->chunks()[c];
    Tensor whole = span.offset < 0
                       ? chunk.embedding_partial(static_cast<EmbeddingUse>(-1 - span.offset))
                       : chunk.params().flat_grads().View(span.offset, {span.length});
    whole = whole.Reshape({whole.numel()});
    for (int64_t start = 0; start < whole.numel(); start += kGradientBucketElements) {
      Tensor bucket = whole.View(start, {std::min(kGradientBucketElements, whole.numel() - start)});
      PT_ASSIGN_OR_RETURN(std::unique_ptr<CommRequest> sum,
                          replicas_device_->StartAllReduceSum(bucket));
      pending_sums_.push_back(std::move(sum));
    }
  }
  ready_.clear();
  return absl::OkStatus();
}

absl::Status Trainer::FinishGradientSums() {
  absl::Status status = StartReadySums();  // what a blocking transport deferred
  for (std::unique_ptr<CommRequest>& sum : pending_sums_) status.Update(sum->Wait());
  pending_sums_.clear();
  return status;
}

absl::Status Trainer::SyncEmbedding() {
  // Each use of the tied embedding has its gradient on the one virtual stage
  // that uses it; every holder of the embedding needs all three, added in the
  // fixed EmbeddingUse order (as one process adds them).
  const ModelSpec& model = spec_.model();
  const int p = topology_.pipeline_stages;
  const int total = model.encoder_layers() + model.decoder_layers();
  const bool tied = !model.has_tied_embeddings() || model.tied_embeddings();
  auto owner_of = [&](int layer) {
    for (size_t vs = 0; vs + 1 < bounds_.size(); ++vs) {
      if (bounds_[vs] <= layer && layer < bounds_[vs + 1]) return static_cast<int>(vs);
    }
    return -1;
  };
  std::array<int, 3> owner = {-1, -1, -1};
  if (tied) owner[kOutputUse] = owner_of(total - 1);
  if (model.decoder_layers() > 0) owner[kTargetUse] = owner_of(model.encoder_layers());
  if (model.encoder_layers() > 0) owner[kSourceUse] = owner_of(0);

  std::array<Tensor, 3> partials;
  const Shape shape{model.vocab_size(), model.d_model()};
  const DType dtype = stage_->chunks()[0]->params().dtype();
  for (int use = 0; use < 3; ++use) {
    if (owner[use] < 0) continue;
    const int owner_rank = owner[use] % p;  // rank within the pipeline group
    Tensor buffer;
    if (owner_rank == topology_.stage) {
      buffer = stage_->chunks()[owner[use] / p]->embedding_partial(static_cast<EmbeddingUse>(use));
    } else {
      buffer = Tensor::Empty(shape, dtype, device_);
    }
    if (p > 1) PT_RETURN_IF_ERROR(pipeline_device_->Broadcast(buffer, owner_rank));
    partials[use] = buffer;
  }
  for (auto& chunk : stage_->chunks()) PT_RETURN_IF_ERROR(chunk->SetEmbeddingGrad(partials));
  return absl::OkStatus();
}

absl::StatusOr<double> Trainer::GlobalGradSquares() {
  // Per-parameter sums of squares (one reduction per chunk on the device,
  // read once), gathered from every virtual stage and added in global layer
  // order: the same sequence of additions as one process.
  const int v = static_cast<int>(stage_->chunks().size());
  std::vector<Tensor> on_device(v);
  int64_t terms = 0;
  for (int c = 0; c < v; ++c) {
    PT_ASSIGN_OR_RETURN(on_device[c], stage_->chunks()[c]->GradSquaresOnDevice(
                                          /*skip_embedding=*/VirtualStage(c) != 0));
    terms += on_device[c].numel();
  }
  // Every chunk's list in one buffer, read in one copy.
  Tensor gathered = Tensor::Empty({terms}, DType::kF64, device_);
  int64_t at = 0;
  for (const Tensor& list : on_device) {
    Tensor part = gathered.View(at, list.shape());
    PT_RETURN_IF_ERROR(CopyTensor(list, part));
    at += list.numel();
  }
  PT_ASSIGN_OR_RETURN(const Tensor host, CopyToDevice(gathered, Device::kCpu));
  std::vector<std::vector<double>> mine(v);
  at = 0;
  for (int c = 0; c < v; ++c) {
    const double* first = host.data<double>() + at;
    mine[c].assign(first, first + on_device[c].numel());
    at += on_device[c].numel();
  }
  if (record_layer_stats_) grad_squares_by_chunk_ = mine;
  // Every virtual stage's list, added in global layer order.
  PT_ASSIGN_OR_RETURN(const std::vector<std::vector<double>> all, GatherByVirtualStage(mine));
  double total = 0;
  for (const auto& list : all) {
    for (double s : list) total += s;
  }
  return total;
}

absl::StatusOr<StepMetrics> Trainer::Step() {
  const auto start = std::chrono::steady_clock::now();
  const TrainConfig& train = spec_.train();
  const int m = std::max(train.microbatches(), 1);
  const int replicas = topology_.data_parallel;

  // Stage 0 of every replica draws the whole global batch (a pure function
  // of the seed and the step) and keeps its replica's micro-batches; it sends
  // them, with the step's token counts, to the other stages of its pipeline.
  StepMetrics metrics;
  std::vector<Batch> drawn;
  if (reads_data()) {
    PT_ASSIGN_OR_RETURN(std::vector<Batch> all,
                        DrawStepBatches(spec_, *data_, step_, m * replicas, &metrics));
    drawn.assign(std::make_move_iterator(all.begin() + topology_.replica * m),
                 std::make_move_iterator(all.begin() + (topology_.replica + 1) * m));
  }
  if (topology_.pipeline_stages > 1) {
    PT_RETURN_IF_ERROR(
        BroadcastStepBatches(*host_groups_.pipeline, /*root=*/0, m, &drawn, &metrics));
  }
  PT_ASSIGN_OR_RETURN(const std::vector<Batch> mine, ToDevice(std::move(drawn)));
  // Every micro-batch's gradient is scaled by the whole step's token count,
  // so the accumulated gradient is the mean over the step's tokens.
  const double grad_scale = 1.0 / static_cast<double>(std::max<int64_t>(metrics.target_tokens, 1));

  for (auto& chunk : stage_->chunks()) chunk->ZeroGrads();
  const int stats_interval = train.layer_stats_interval();
  record_layer_stats_ = stats_interval > 0 && (step_ + 1) % stats_interval == 0;
  if (record_layer_stats_) {
    for (auto& chunk : stage_->chunks()) chunk->StartResidualStats();
  }
  stage_->BeginStep(train.seed(), step_, &mine, topology_.replica * m, grad_scale);
  ready_.clear();
  if (replicas > 1) {
    stage_->OnGradientsFinal(
        [this](int c, const FlatSegment& span) { return GradientsFinal(c, span); },
        [this](int c) { return ChunkGradientsFinal(c); });
  }
  const absl::Status executed = ExecuteActions(schedule_.ranks[topology_.stage], *stage_,
                                               *pipeline_device_, train.pipeline().chunks())
                                    .status();
  // Sums already started complete before anything else (their tensors stay
  // alive and untouched until then), even when the schedule failed.
  const absl::Status summed = FinishGradientSums();
  PT_RETURN_IF_ERROR(executed);
  PT_RETURN_IF_ERROR(summed);
  PT_RETURN_IF_ERROR(stage_->ReadLoss());
  PT_RETURN_IF_ERROR(SyncEmbedding());
  PT_ASSIGN_OR_RETURN(const double squares, GlobalGradSquares());

  metrics.step = ++step_;
  metrics.grad_norm = std::sqrt(squares);
  // Whether the update would leave every weight and moment finite, asked
  // before anything is written: the loss and the norm are global already,
  // the dry run's count of bad elements is summed over the ranks with the
  // loss. A step that fails it is skipped on every rank alike.
  const bool finite_gradients = std::isfinite(squares) && !poison_next_gradients_;
  poison_next_gradients_ = false;
  Tensor nonfinite = Tensor::Zeros({1}, DType::kF64, device_);
  if (finite_gradients) {
    for (size_t c = 0; c < stage_->chunks().size(); ++c) {
      ParameterStore& store = stage_->chunks()[c]->params();
      PT_RETURN_IF_ERROR(ClipGradients(train, squares, store.flat_grads()));
      PT_RETURN_IF_ERROR(CountNonFiniteAdamWResults(AdamWHyperFor(train, step_), step_,
                                                    store.flat_params(), store.flat_grads(),
                                                    adam_m_[c], adam_v_[c], nonfinite));
    }
  }
  PT_ASSIGN_OR_RETURN(const Tensor bad_updates, CopyToDevice(nonfinite, Device::kCpu));
  // The loss lives on the last stage of each replica: sum it over everyone.
  Tensor sums = Tensor::FromVector(
      {stage_->loss_sum(), stage_->nll_sum(), finite_gradients ? bad_updates.At(0) : 1.0}, {3},
      DType::kF64);
  PT_RETURN_IF_ERROR(world_->AllReduceSum(sums));
  metrics.skipped = !finite_gradients || !std::isfinite(sums.At(0)) || sums.At(2) != 0;
  // ||dW|| on a statistics step: a copy of each chunk's parameters (on the
  // device, no host read) taken before the update; after it the copy becomes
  // old − new in place and is reduced per parameter. A copy rather than
  // recomputing the AdamW step: the update itself stays the one code path,
  // and non-recording steps make no copy at all.
  std::vector<Tensor> before;
  if (record_layer_stats_ && !metrics.skipped) {
    for (auto& chunk : stage_->chunks()) before.push_back(chunk->params().flat_params().Clone());
  }
  if (!metrics.skipped) {
    for (size_t c = 0; c < stage_->chunks().size(); ++c) {
      ParameterStore& store = stage_->chunks()[c]->params();
      PT_RETURN_IF_ERROR(AdamWStep(AdamWHyperFor(train, step_), step_, store.flat_params(),
                                   store.flat_grads(), adam_m_[c], adam_v_[c]));
      store.RefreshComputeCopy();  // the bf16 weights the next step computes with
    }
    skipped_in_a_row_ = 0;
  } else {
    ++skipped_in_a_row_;
    ++skipped_steps_;
  }
  if (record_layer_stats_) {
    PT_ASSIGN_OR_RETURN(metrics.layer_stats, CollectLayerStats(std::move(before)));
    record_layer_stats_ = false;
  }
  metrics.skipped_steps = skipped_steps_;
  metrics.skipped_in_a_row = skipped_in_a_row_;
  metrics.nonfinite_updates = static_cast<int64_t>(sums.At(2));
  metrics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  FinishMetrics(train, sums.At(0), sums.At(1), &metrics);
  return metrics;
}

absl::StatusOr<std::vector<std::vector<double>>> Trainer::GatherByVirtualStage(
    const std::vector<std::vector<double>>& mine) {
  const int p = topology_.pipeline_stages;
  const int v = static_cast<int>(mine.size());
  if (p == 1) return mine;  // virtual stage c is chunk c
  int64_t longest = 0;
  for (const auto& list : mine) longest = std::max<int64_t>(longest, list.size());
  Tensor count = Tensor::FromVector({static_cast<double>(longest)}, {1}, DType::kF64);
  PT_ASSIGN_OR_RETURN(std::vector<Tensor> counts, host_groups_.pipeline->AllGather(count));
  int64_t width = 0;
  for (const Tensor& c : counts) width = std::max<int64_t>(width, static_cast<int64_t>(c.At(0)));
  Tensor packed = Tensor::Empty({v, width + 1}, DType::kF64);
  for (int c = 0; c < v; ++c) {
    double* row = packed.data<double>() + c * (width + 1);
    row[0] = static_cast<double>(mine[c].size());
    for (int64_t i = 0; i < width; ++i) {
      row[1 + i] = i < static_cast<int64_t>(mine[c].size()) ? mine[c][i] : 0.0;
    }
  }
  PT_ASSIGN_OR_RETURN(std::vector<Tensor> all, host_groups_.pipeline->AllGather(packed));
  std::vector<std::vector<double>> lists(p * v);
  for (int vs = 0; vs < p * v; ++vs) {
    const double* row = all[vs % p].data<double>() + (vs / p) * (width + 1);
    lists[vs].assign(row + 1, row + 1 + static_cast<int64_t>(row[0]));
  }
  return lists;
}

namespace {

// Group codes of parameters and layers: global layer g >= 0; the others.
constexpr int kEmbedGroup = -1, kEncoderFinalLn = -2, kDecoderFinalLn = -3, kOutputGroup = -4,
              kOtherGroup = -5;

int GroupOfParameter(const std::string& name, int encoder_layers) {
  const size_t dot = name.find('.');
  const std::string head = name.substr(0, dot);
  if (head == "embed") return kEmbedGroup;
  if (head == "output") return kOutputGroup;
  if ((head == "encoder" || head == "decoder") && dot != std::string::npos) {
    const size_t end = name.find('.', dot + 1);
    const std::string second = name.substr(dot + 1, end == std::string::npos ? end : end - dot - 1);
    if (second == "final_ln") return head == "encoder" ? kEncoderFinalLn : kDecoderFinalLn;
    if (!second.empty() && second.find_first_not_of("0123456789") == std::string::npos) {
      return std::stoi(second) + (head == "decoder" ? encoder_layers : 0);
    }
  }
  return kOtherGroup;
}

std::string GroupName(int code, int encoder_layers) {
  switch (code) {
    case kEmbedGroup:
      return "embed";
    case kEncoderFinalLn:
      return "encoder.final_ln";
    case kDecoderFinalLn:
      return "decoder.final_ln";
    case kOutputGroup:
      return "output";
    case kOtherGroup:
      return "other";
    default:
      return code < encoder_layers ? absl::StrCat("encoder.", code)
                                   : absl::StrCat("decoder.", code - encoder_layers);
  }
}

}  // namespace

absl::StatusOr<LayerStats> Trainer::CollectLayerStats(std::vector<Tensor> before) {
  const int v = static_cast<int>(stage_->chunks().size());
  const int n_enc = spec_.model().encoder_layers();
  // Per chunk, per parameter (the GlobalGradSquares list: the embedding only
  // on virtual stage 0): [grad², ||W_before||², ||dW||², group] ×, then per
  // layer [sum of squares, elements, group].
  std::vector<std::vector<double>> params(v), layers(v);
  for (int c = 0; c < v; ++c) {
    ModelStage& chunk = *stage_->chunks()[c];
    const bool skip_embedding = VirtualStage(c) != 0;
    const std::vector<FlatSegment> segments = chunk.ParameterSegments(skip_embedding);
    std::vector<double> w2(segments.size(), std::nan("")), d2(segments.size(), std::nan(""));
    if (!before.empty()) {
      PT_ASSIGN_OR_RETURN(w2, SegmentSumsOfSquares(before[c], segments));
      PT_RETURN_IF_ERROR(ops::Axpy(-1.0, chunk.params().flat_params(), before[c]));
      PT_ASSIGN_OR_RETURN(d2, SegmentSumsOfSquares(before[c], segments));
    }
    const std::vector<double>& g2 = grad_squares_by_chunk_[c];
    std::vector<int> groups;
    for (ParamId id = 0; id < static_cast<ParamId>(chunk.params().infos().size()); ++id) {
      if (skip_embedding && id == chunk.embedding_id()) continue;
      groups.push_back(GroupOfParameter(chunk.params().infos()[id].name, n_enc));
    }
    if (g2.size() != segments.size() || groups.size() != segments.size()) {
      return absl::InternalError("layer statistics: parameter lists of different lengths");
    }
    for (size_t i = 0; i < segments.size(); ++i) {
      params[c].insert(params[c].end(), {g2[i], w2[i], d2[i], static_cast<double>(groups[i])});
    }
    PT_ASSIGN_OR_RETURN(const auto residual, chunk.TakeResidualStats());
    for (size_t i = 0; i < residual.size(); ++i) {
      layers[c].insert(layers[c].end(), {residual[i].first, residual[i].second,
                                         static_cast<double>(chunk.first_layer() + i)});
    }
  }
  grad_squares_by_chunk_.clear();
  PT_ASSIGN_OR_RETURN(const auto all_params, GatherByVirtualStage(params));
  PT_ASSIGN_OR_RETURN(const auto all_layers, GatherByVirtualStage(layers));
  // Sums per group, groups in the order they first appear (global order).
  struct Sums {
    double g2 = 0, w2 = 0, d2 = 0, r2 = 0, elements = 0;
  };
  std::vector<int> order;
  std::map<int, Sums> sums;
  auto at = [&](int code) -> Sums& {
    if (!sums.count(code)) order.push_back(code);
    return sums[code];
  };
  for (const auto& list : all_params) {
    for (size_t i = 0; i + 3 < list.size(); i += 4) {
      Sums& s = at(static_cast<int>(list[i + 3]));
      s.g2 += list[i];
      s.w2 += list[i + 1];
      s.d2 += list[i + 2];
    }
  }
  for (const auto& list : all_layers) {
    for (size_t i = 0; i + 2 < list.size(); i += 3) {
      Sums& s = at(static_cast<int>(list[i + 2]));
      s.r2 += list[i];
      s.elements += list[i + 1];
    }
  }
  LayerStats stats;
  for (int code : order) {
    const Sums& s = sums[code];
    stats.layers.push_back(GroupName(code, n_enc));
    stats.grad_norm.push_back(std::sqrt(s.g2));
    stats.update_ratio.push_back(s.w2 > 0 ? std::sqrt(s.d2) / std::sqrt(s.w2) : std::nan(""));
    stats.residual_rms.push_back(s.elements > 0 ? std::sqrt(s.r2 / s.elements) : std::nan(""));
  }
  return stats;
}

absl::Status Trainer::VisitParameters(const std::function<void(const Tensor&)>& visit) {
  // Every virtual stage's parameters, in order, in the CPU layout; a stage's
  // copy of the embedding (registered first) is skipped except on virtual
  // stage 0, so the bytes are exactly one process's flat buffer.
  const int p = topology_.pipeline_stages;
  const int v = static_cast<int>(stage_->chunks().size());
  for (int vs = 0; vs < p * v; ++vs) {
    const int owner = vs % p;
    Tensor block;
    if (owner == topology_.stage) {
      const ModelStage& chunk = *stage_->chunks()[vs / p];
      const Tensor flat = chunk.params().PackedHostParams();
      int64_t skip = 0;
      if (vs != 0 && chunk.has_embedding()) {
        skip = NumElements(chunk.params().infos()[chunk.embedding_id()].shape);
      }
      block = flat.View(skip, {flat.numel() - skip});
    }
    if (p > 1) {
      Tensor count = Tensor::FromVector({static_cast<double>(block.numel())}, {1}, DType::kF64);
      PT_RETURN_IF_ERROR(host_groups_.pipeline->Broadcast(count, owner));
      if (owner != topology_.stage) {
        block = Tensor::Empty({static_cast<int64_t>(count.At(0))},
                              stage_->chunks()[0]->params().dtype());
      }
      PT_RETURN_IF_ERROR(host_groups_.pipeline->Broadcast(block, owner));
    }
    visit(block);
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Trainer::GatherParameters(bool keep) {
  if (!keep) {
    PT_RETURN_IF_ERROR(VisitParameters([](const Tensor&) {}));
    return Tensor();
  }
  std::vector<char> bytes;
  int64_t total = 0;
  DType dtype = DType::kF32;
  PT_RETURN_IF_ERROR(VisitParameters([&](const Tensor& block) {
    const char* data = static_cast<const char*>(block.raw_data());
    bytes.insert(bytes.end(), data, data + block.nbytes());
    total += block.numel();
    dtype = block.dtype();
  }));
  Tensor flat = Tensor::Empty({total}, dtype);
  if (!bytes.empty()) std::memcpy(flat.raw_data(), bytes.data(), bytes.size());
  return flat;
}

absl::Status Trainer::SaveCheckpoint(const std::string& run_dir) {
  if (world_->rank() == 0) PT_RETURN_IF_ERROR(BeginCheckpoint(run_dir, step_));
  PT_RETURN_IF_ERROR(world_->Barrier());
  if (topology_.replica == 0) {
    std::vector<NamedBlock> blocks;
    for (size_t c = 0; c < stage_->chunks().size(); ++c) {
      const ModelStage& chunk = *stage_->chunks()[c];
      PT_ASSIGN_OR_RETURN(std::vector<NamedBlock> mine,
                          BlocksOfStore(chunk.params(), adam_m_[c], adam_v_[c],
                                        /*include_embedding=*/chunk.first_layer() == 0));
      for (NamedBlock& block : mine) blocks.push_back(std::move(block));
    }
    PT_RETURN_IF_ERROR(WriteCheckpointFiles(run_dir, step_, blocks));
  }
  PT_RETURN_IF_ERROR(world_->Barrier());
  if (world_->rank() == 0) {  // stage 0 of replica 0: it holds the data cursor
    const CheckpointInfo info{.step = step_,
                              .spec = spec_,
                              .data_cursor = data_->Cursor(),
                              .rng_seed = spec_.train().seed(),
                              .keep_last = spec_.train().keep_checkpoints()};
    PT_RETURN_IF_ERROR(FinalizeCheckpoint(run_dir, info).status());
  }
  // Nobody reads the checkpoint back before rank 0 has finished it.
  return world_->Barrier();
}

absl::StatusOr<bool> Trainer::AnyRank(bool mine) {
  Tensor flag = Tensor::FromVector({mine ? 1.0 : 0.0}, {1}, DType::kF64);
  PT_RETURN_IF_ERROR(world_->AllReduceSum(flag));
  return flag.At(0) > 0;
}

absl::Status Trainer::RestoreCheckpoint(const CheckpointReader& reader) {
  for (size_t c = 0; c < stage_->chunks().size(); ++c) {
    ParameterStore& store = stage_->chunks()[c]->params();
    PT_RETURN_IF_ERROR(LoadParameterStore(reader, &store, &adam_m_[c], &adam_v_[c]));
    store.RefreshComputeCopy();
  }
  step_ = reader.step();
  const std::string& cursor = reader.manifest().data_cursor();
  if (!cursor.empty() && reads_data()) PT_RETURN_IF_ERROR(data_->Seek(cursor));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Trainer::PeakLiveReport() {
  Tensor mine = Tensor::FromVector(
      {static_cast<double>(stage_->peak_live()), static_cast<double>(simulated_peak_live_)}, {2},
      DType::kF64);
  std::vector<Tensor> all = {mine};
  if (topology_.pipeline_stages > 1) {
    PT_ASSIGN_OR_RETURN(all, host_groups_.pipeline->AllGather(mine));
  }
  std::string measured, simulated;
  for (const Tensor& t : all) {
    absl::StrAppend(&measured, " ", static_cast<int>(t.At(0)));
    absl::StrAppend(&simulated, " ", static_cast<int>(t.At(1)));
  }
  return absl::StrCat("measured", measured, ", simulated", simulated);
}

absl::StatusOr<std::string> Trainer::ParamsDigest() {
  uint64_t state = 0xcbf29ce484222325ull;
  PT_RETURN_IF_ERROR(VisitParameters(
      [&](const Tensor& block) { state = Fnv1a64(block.raw_data(), block.nbytes(), state); }));
  return absl::StrFormat("%016x", state);
}

}  // namespace pipetrain
