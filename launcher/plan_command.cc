#include "launcher/plan_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config/spec_loader.h"
#include "core/data/multilingual_loader.h"
#include "core/status_macros.h"
#include "launcher/plan_memory.h"
#include "launcher/run_spec_checks.h"
#include "launcher/trainer/stage_layout.h"
#include "parallel/chrome_trace.h"
#include "parallel/partition.h"
#include "parallel/schedule.h"
#include "parallel/schedule_simulator.h"

// Shared with `train` (defined in train_command.cc).
ABSL_DECLARE_FLAG(std::string, spec);
ABSL_DECLARE_FLAG(std::string, config);

ABSL_FLAG(int32_t, world, 0, "plan: GPUs in the job (pipeline stages x data-parallel replicas)");
ABSL_FLAG(int32_t, dp, 1, "plan: data-parallel replicas; pipeline stages = world / dp");
ABSL_FLAG(int32_t, microbatches, 0, "plan: micro-batches per step per replica (0: the config's)");
ABSL_FLAG(std::string, schedule, "", "plan: gpipe, 1f1b or interleaved (empty: the config's)");
ABSL_FLAG(int32_t, chunks, 0, "plan: chunks per rank for interleaved (0: the config's)");
ABSL_FLAG(std::string, partition, "", "plan: uniform, balanced or explicit (empty: the config's)");
ABSL_FLAG(std::string, recompute, "", "plan: none, full or every (empty: the config's)");
ABSL_FLAG(int32_t, seq, 0,
          "plan: the longest pair's tokens on each side, as train.corpus.max_length counts "
          "them (0: the config's corpus.max_length, or synthetic.max_length without a corpus)");
ABSL_FLAG(int64_t, sequences, 0,
          "plan: sequences per micro-batch (0: as many pairs of the longest length as "
          "train.tokens_per_batch / (microbatches x dp) holds, rounded up)");
ABSL_FLAG(double, tflops, 400, "plan: sustained TFLOP/s per GPU that turns FLOPs into time");
ABSL_FLAG(double, link_gbps, 50,
          "plan: GB/s of the links that carry stage boundaries and the gradient all-reduce "
          "(0: free)");
ABSL_FLAG(int32_t, dtype_bytes, 2, "plan: bytes per saved activation element (2 = bf16)");
ABSL_FLAG(double, gpu_gb, 80, "plan: GPU memory in GB (1e9 bytes) to report headroom against");
ABSL_FLAG(std::string, costs, "modelled",
          "plan: modelled (FLOPs of each virtual stage) or uniform (every virtual stage the "
          "mean: the schedule's own bubble)");
ABSL_FLAG(std::string, trace, "", "plan: write the simulated schedule as a Chrome trace here");

namespace pipetrain {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Bytes per parameter: fp32 master + bf16 compute copy; fp32 gradient (and
// one fp32 partial gradient per embedding use); AdamW's two fp32 moments.
constexpr int64_t kWeightBytes = 4 + 2;
constexpr int64_t kGradBytes = 4;
constexpr int64_t kAdamBytes = 8;

std::string Grouped(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

double GiB(int64_t bytes) { return static_cast<double>(bytes) / kGiB; }

// The spec with the plan's flags applied on top of the file, --config and --set.
absl::StatusOr<RunSpec> ResolveSpec(const std::vector<std::string>& set_overrides, int stages) {
  std::vector<std::string> overrides = set_overrides;
  overrides.push_back(absl::StrCat("train.pipeline.stages=", stages));
  overrides.push_back(absl::StrCat("train.data_parallel=", absl::GetFlag(FLAGS_dp)));
  if (absl::GetFlag(FLAGS_microbatches) > 0) {
    overrides.push_back(absl::StrCat("train.microbatches=", absl::GetFlag(FLAGS_microbatches)));
  }
  if (absl::GetFlag(FLAGS_chunks) > 0) {
    overrides.push_back(absl::StrCat("train.pipeline.chunks=", absl::GetFlag(FLAGS_chunks)));
  }
  for (const auto& [field, value] :
       {std::pair<const char*, std::string>{"schedule", absl::GetFlag(FLAGS_schedule)},
        {"partition", absl::GetFlag(FLAGS_partition)},
        {"recompute", absl::GetFlag(FLAGS_recompute)}}) {
    if (!value.empty()) overrides.push_back(absl::StrCat("train.pipeline.", field, "=", value));
  }
  const std::string spec_path = absl::GetFlag(FLAGS_spec);
  const std::string config_path = absl::GetFlag(FLAGS_config);
  PT_ASSIGN_OR_RETURN(RunSpec spec, LoadCheckedRunSpec(spec_path, config_path, overrides));
  const int seq = absl::GetFlag(FLAGS_seq);
  if (seq == 0) return spec;
  PT_CHECK_ARG(seq >= 1, "--seq=", seq, " is too short; expected >= 1 token a side");
  // The cost model plans with the data's longest pairs (ShapeOf in
  // stage_layout.h), so --seq goes there and reaches every planner.
  if (spec.train().corpus().dir().empty()) {
    overrides.push_back(absl::StrCat("train.synthetic.max_length=", seq));
    if (spec.train().synthetic().min_length() > seq) {
      overrides.push_back(absl::StrCat("train.synthetic.min_length=", seq));
    }
  } else {
    overrides.push_back(absl::StrCat("train.corpus.max_length=", seq));
  }
  return LoadCheckedRunSpec(spec_path, config_path, overrides);
}

std::string ScheduleName(const PipelineConfig& pipe) {
  return pipe.schedule() == SCHEDULE_INTERLEAVED_1F1B && pipe.chunks() > 1
             ? absl::StrCat("interleaved 1F1B, ", pipe.chunks(), " chunks per rank")
         : pipe.schedule() == SCHEDULE_GPIPE ? std::string("GPipe")
                                             : std::string("1F1B");
}

std::string RecomputeName(const PipelineConfig& pipe) {
  std::string name = pipe.recompute();
  if (name == "every") absl::StrAppend(&name, " ", pipe.recompute_every());
  if (pipe.stage_recompute_size() > 0) name += " (per-stage overrides)";
  return name;
}

// "enc 0-12 +src_embed", "enc 99 dec 0-11 +tgt_embed", "dec 88-99 +head".
std::string Holds(const Partition& partition, int vs) {
  const int n = partition.encoder_layers, m = partition.decoder_layers;
  const LayerRange& r = partition.stages[vs].layers;
  std::string out;
  auto range = [](int a, int b) { return a == b ? absl::StrCat(a) : absl::StrCat(a, "-", b); };
  if (r.first < n) absl::StrAppend(&out, "enc ", range(r.first, std::min(r.last, n) - 1));
  if (r.last > n) {
    absl::StrAppend(&out, out.empty() ? "" : " ", "dec ",
                    range(std::max(r.first, n) - n, r.last - 1 - n));
  }
  if (n > 0 && r.first == 0) out += " +src_embed";
  if (m > 0 && r.first <= n && n < r.last) out += " +tgt_embed";
  if (r.last == n + m) out += " +head";
  return out;
}

// Bytes of the largest message crossing a virtual-stage boundary (as
// ModelStage::ShapesAt: the residual stream, plus the encoder output once the
// decoder has begun), per micro-batch.
int64_t LargestBoundaryBytes(const Partition& partition, const ActivationShape& shape,
                             int64_t d_model) {
  const int n = partition.encoder_layers, m = partition.decoder_layers;
  int64_t largest = 0;
  for (size_t vs = 1; vs < partition.stages.size(); ++vs) {
    const int b = partition.stages[vs].layers.first;
    int64_t rows = 0;
    if (b < n) rows += shape.source_length;
    if (b > n) rows += shape.target_length;
    if (n > 0 && m > 0 && b >= n) rows += shape.source_length;
    largest = std::max(largest, rows);
  }
  return largest * d_model * shape.sequences * shape.activation_bytes;
}

absl::Status CheckFlags() {
  if (absl::GetFlag(FLAGS_spec).empty()) {
    return absl::InvalidArgumentError(
        "plan needs --spec FILE, e.g. pipetrain plan --spec configs/m2m_200L.pbtxt --world 64 "
        "--dp 4");
  }
  const int world = absl::GetFlag(FLAGS_world), dp = absl::GetFlag(FLAGS_dp);
  PT_CHECK_ARG(world >= 1, "plan needs --world N (the number of GPUs, >= 1); got --world=", world);
  PT_CHECK_ARG(dp >= 1, "--dp=", dp, " must be >= 1");
  PT_CHECK_ARG(world % dp == 0, "--world=", world, " is not divisible by --dp=", dp,
               "; every data-parallel replica needs the same number of pipeline stages");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_microbatches) >= 0, "--microbatches must be >= 1 (0: config)");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_chunks) >= 0, "--chunks must be >= 1 (0: config)");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_sequences) >= 0, "--sequences must be >= 1 (0: derived)");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_seq) >= 0, "--seq must be >= 1 (0: the config's)");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_tflops) > 0 && std::isfinite(absl::GetFlag(FLAGS_tflops)),
               "--tflops=", absl::GetFlag(FLAGS_tflops), " must be a finite value > 0");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_link_gbps) >= 0 && std::isfinite(absl::GetFlag(FLAGS_link_gbps)),
               "--link_gbps=", absl::GetFlag(FLAGS_link_gbps), " must be >= 0 (0: free links)");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_dtype_bytes) >= 1 && absl::GetFlag(FLAGS_dtype_bytes) <= 8,
               "--dtype_bytes=", absl::GetFlag(FLAGS_dtype_bytes), " must be in 1..8");
  PT_CHECK_ARG(absl::GetFlag(FLAGS_gpu_gb) > 0, "--gpu_gb must be > 0");
  const std::string costs = absl::GetFlag(FLAGS_costs);
  PT_CHECK_ARG(costs == "modelled" || costs == "uniform", "--costs=\"", costs,
               "\" is not modelled or uniform");
  return absl::OkStatus();
}

struct RankMemory {
  int64_t params = 0;
  int64_t weights = 0, grads = 0, adam = 0, activations = 0;
  int64_t total() const { return weights + grads + adam + activations; }
};

// Everything the report prints, computed once.
struct Plan {
  RunSpec spec;
  int world = 1, dp = 1;
  Partition partition;
  Schedule schedule;
  ActivationShape shape;
  SimulationCosts costs;
  SimulationResult sim;
  bool uniform_costs = false;
  double tflops = 0, gbps = 0;
  int64_t message_bytes = 0;
  double model_flops = 0;        // training FLOPs of one micro-batch, all stages
  std::vector<double> stage_ms;  // F + B + W of one micro-batch per virtual stage
  std::vector<StageParameterCount> params;
  std::vector<StageActivationBytes> activations;
  std::vector<RankMemory> ranks;

  int stages() const { return schedule.stages; }
  int microbatches() const { return schedule.microbatches; }
  int64_t tokens_per_sequence() const { return shape.source_length + shape.target_length; }
  // One longest pair as tokens_per_batch counts it (PairTokens: an
  // encoder-decoder's target twice, as input and as labels).
  int64_t budget_tokens_per_sequence = 0;
};

absl::StatusOr<Plan> MakePlan(const std::vector<std::string>& set_overrides) {
  Plan plan;
  plan.world = absl::GetFlag(FLAGS_world);
  plan.dp = absl::GetFlag(FLAGS_dp);
  const int stages = plan.world / plan.dp;
  PT_ASSIGN_OR_RETURN(plan.spec, ResolveSpec(set_overrides, stages));
  const RunSpec& spec = plan.spec;
  const int microbatches = spec.train().microbatches();
  PT_ASSIGN_OR_RETURN(plan.partition, PartitionFromConfig(spec));
  PT_ASSIGN_OR_RETURN(plan.schedule,
                      BuildScheduleFromConfig(spec.train().pipeline(), stages, microbatches));
  const int virtual_stages = plan.schedule.virtual_stages();

  const TransformerShape tshape = ShapeOf(spec);
  const int64_t side = LongestPairSide(spec);
  plan.budget_tokens_per_sequence = PaddedBatchTokens(spec.model().kind(), 1, side, side, 2 * side);
  int64_t sequences = absl::GetFlag(FLAGS_sequences);
  if (sequences == 0) {
    // As many longest pairs as a micro-batch's share of tokens_per_batch
    // holds, rounded up so that small budgets are not planned below it.
    const int64_t share = int64_t{microbatches} * plan.dp * plan.budget_tokens_per_sequence;
    sequences = std::max<int64_t>(1, (spec.train().tokens_per_batch() + share - 1) / share);
  }
  plan.shape = ActivationShape{.sequences = sequences,
                               .source_length = tshape.source_length,
                               .target_length = tshape.target_length,
                               .activation_bytes = absl::GetFlag(FLAGS_dtype_bytes)};

  // Memory of every virtual stage, and the FLOPs its recomputation adds.
  PT_ASSIGN_OR_RETURN(const std::vector<int> bounds, StageBounds(spec));
  PT_ASSIGN_OR_RETURN(const LayerCosts layer_costs, ModelledLayerCosts(tshape));
  const int n_enc = spec.model().encoder_layers();
  plan.params.resize(virtual_stages);
  plan.activations.resize(virtual_stages);
  std::vector<double> recompute_flops(virtual_stages, 0.0);
  for (int vs = 0; vs < virtual_stages; ++vs) {
    const LayerRange& r = plan.partition.stages[vs].layers;
    PT_ASSIGN_OR_RETURN(plan.params[vs], CountStageParameters(spec.model(), r.first, r.last));
    PT_ASSIGN_OR_RETURN(const std::vector<bool> flags, RecomputeFlags(spec, vs, bounds));
    PT_ASSIGN_OR_RETURN(plan.activations[vs],
                        CountStageActivations(spec.model(), r.first, r.last, flags, plan.shape));
    for (size_t i = 0; i < flags.size(); ++i) {
      const int g = r.first + static_cast<int>(i);
      // A layer's training cost is 3 forwards; B replays one.
      const double cost = g < n_enc ? layer_costs.encoder[g] : layer_costs.decoder[g - n_enc];
      if (flags[i]) recompute_flops[vs] += cost / 3 * sequences;
    }
  }

  // Time: the training FLOPs of a virtual stage's micro-batch (the partition's
  // cost model, per sequence), one third each to F, B and W, plus the
  // recomputed forwards in B, at --tflops; boundary messages take --link_gbps.
  plan.tflops = absl::GetFlag(FLAGS_tflops);
  plan.gbps = absl::GetFlag(FLAGS_link_gbps);
  plan.uniform_costs = absl::GetFlag(FLAGS_costs) == "uniform";
  const double ms_per_flop = 1e3 / (plan.tflops * 1e12);
  ComputeCosts mean;
  for (int vs = 0; vs < virtual_stages; ++vs) {
    const double flops = plan.partition.stages[vs].cost * sequences;
    plan.model_flops += flops;
    const ComputeCosts c{.forward = flops / 3 * ms_per_flop,
                         .backward = (flops / 3 + recompute_flops[vs]) * ms_per_flop,
                         .weight = flops / 3 * ms_per_flop};
    plan.costs.per_virtual_stage.push_back(c);
    mean.forward += c.forward / virtual_stages;
    mean.backward += c.backward / virtual_stages;
    mean.weight += c.weight / virtual_stages;
  }
  if (plan.uniform_costs) plan.costs.per_virtual_stage.assign(virtual_stages, mean);
  for (const ComputeCosts& c : plan.costs.per_virtual_stage) {
    plan.stage_ms.push_back(c.forward + c.backward + c.weight);
  }
  plan.message_bytes = LargestBoundaryBytes(plan.partition, plan.shape, spec.model().d_model());
  plan.costs.latency = plan.gbps > 0 ? plan.message_bytes / (plan.gbps * 1e9) * 1e3 : 0.0;
  PT_ASSIGN_OR_RETURN(plan.sim, SimulateSchedule(plan.schedule, plan.costs));

  plan.ranks.resize(stages);
  for (int r = 0; r < stages; ++r) {
    RankMemory& mem = plan.ranks[r];
    std::vector<StageActivationBytes> per_chunk;
    for (int c = 0; c < plan.schedule.chunks; ++c) {
      const int vs = plan.schedule.VirtualStage(r, c);
      mem.params += plan.params[vs].total;
      mem.grads += kGradBytes * (plan.params[vs].total +
                                 plan.params[vs].embedding * plan.params[vs].embedding_uses);
      per_chunk.push_back(plan.activations[vs]);
    }
    mem.weights = kWeightBytes * mem.params;
    mem.adam = kAdamBytes * mem.params;
    mem.activations = PeakActivationBytes(plan.schedule.ranks[r], per_chunk);
  }
  return plan;
}

void PrintLayout(const Plan& plan) {
  const ModelSpec& model = plan.spec.model();
  const TrainConfig& train = plan.spec.train();
  const PipelineConfig& pipe = train.pipeline();
  std::printf("plan: %s (%s, %d+%d layers, d=%d, ffn=%d, heads=%d, vocab=%d, %s)\n",
              model.name().c_str(), ModelKind_Name(model.kind()).c_str(), model.encoder_layers(),
              model.decoder_layers(), model.d_model(), model.ffn_dim(), model.heads(),
              model.vocab_size(), ResidualNorm_Name(model.norm()).c_str());
  std::printf(
      "layout: %d GPUs = %d pipeline stages x %d data-parallel replicas; %s (%d virtual "
      "stages); partition %s; recompute %s\n",
      plan.world, plan.stages(), plan.dp, ScheduleName(pipe).c_str(),
      plan.schedule.virtual_stages(), pipe.partition().c_str(), RecomputeName(pipe).c_str());
  const int64_t step_tokens =
      plan.shape.sequences * plan.tokens_per_sequence() * plan.microbatches() * plan.dp;
  // Source + target for an encoder-decoder; one-stack models have one sequence.
  const int64_t src = plan.shape.source_length, tgt = plan.shape.target_length;
  const std::string lengths =
      src > 0 && tgt > 0 ? absl::StrCat("(", src, " + ", tgt, ")") : absl::StrCat(src + tgt);
  // The same step in the unit of tokens_per_batch.
  const int64_t budget_tokens =
      plan.shape.sequences * plan.microbatches() * plan.dp * plan.budget_tokens_per_sequence;
  std::printf(
      "batch: %d micro-batches x %lld sequences x %s tokens per replica; %s tokens "
      "per step, %s as train.tokens_per_batch (%s) counts them\n",
      plan.microbatches(), static_cast<long long>(plan.shape.sequences), lengths.c_str(),
      Grouped(step_tokens).c_str(), Grouped(budget_tokens).c_str(),
      Grouped(train.tokens_per_batch()).c_str());
  std::printf(
      "cost model: %s FLOPs per virtual stage at %g TFLOP/s per GPU, F:B:W = 1:1:1 (B also "
      "replays recomputed forwards); boundary "
      "message %.2f MB at %g GB/s = %.4g ms; activations %d B, logits and LN statistics 4 B\n",
      plan.uniform_costs ? "mean" : "modelled", plan.tflops, plan.message_bytes / 1e6, plan.gbps,
      plan.costs.latency, static_cast<int>(plan.shape.activation_bytes));
  int64_t held = 0, copies = 0;
  for (const StageParameterCount& p : plan.params) {
    held += p.total;
    if (p.embedding > 0) ++copies;
  }
  const int64_t embedding = int64_t{model.vocab_size()} * model.d_model();
  const int64_t model_params = held - std::max<int64_t>(copies - 1, 0) * embedding;
  std::printf(
      "parameters: %s in the model (embedding %s counted once); %s held over the stages (%lld "
      "copies of the embedding)\n",
      Grouped(model_params).c_str(), Grouped(embedding).c_str(), Grouped(held).c_str(),
      static_cast<long long>(copies));
}

void PrintStages(const Plan& plan) {
  std::printf("\nvirtual stages (per micro-batch):\n");
  std::printf("  %3s %5s %5s %-12s %-32s %15s %10s %9s %9s\n", "vs", "rank", "chunk", "layers",
              "holds", "params", "GFLOP", "F+B+W ms", "act GiB");
  for (int vs = 0; vs < plan.schedule.virtual_stages(); ++vs) {
    const LayerRange& r = plan.partition.stages[vs].layers;
    std::printf("  %3d %5d %5d %-12s %-32s %15s %10.1f %9.4g %9.3f\n", vs, vs % plan.stages(),
                vs / plan.stages(), absl::StrCat("[", r.first, ", ", r.last, ")").c_str(),
                Holds(plan.partition, vs).c_str(), Grouped(plan.params[vs].total).c_str(),
                plan.partition.stages[vs].cost * plan.shape.sequences / 1e9, plan.stage_ms[vs],
                GiB(plan.activations[vs].saved));
  }
  std::printf(
      "\nmemory per GPU (GiB): weights 6 B, grads 4 B (+4 B per embedding use), AdamW 8 B per "
      "parameter; activations at their peak over the simulated schedule\n");
  std::printf("  %4s %15s %8s %8s %8s %11s %8s %9s %7s\n", "rank", "params", "weights", "grads",
              "adamw", "activations", "total", "peak live", "bubble");
  int worst = 0;
  for (int r = 0; r < plan.stages(); ++r) {
    const RankMemory& m = plan.ranks[r];
    if (m.total() > plan.ranks[worst].total()) worst = r;
    std::printf("  %4d %15s %8.2f %8.2f %8.2f %11.2f %8.2f %9d %7.4f\n", r,
                Grouped(m.params).c_str(), GiB(m.weights), GiB(m.grads), GiB(m.adam),
                GiB(m.activations), GiB(m.total()), plan.sim.ranks[r].peak_live_activations,
                plan.sim.ranks[r].bubble_fraction);
  }
  const double gpu_gb = absl::GetFlag(FLAGS_gpu_gb);
  const int64_t largest = plan.ranks[worst].total();
  std::printf("largest: rank %d, %.2f GiB = %.1f%% of %g GB (headroom %.2f GiB)%s\n", worst,
              GiB(largest), 100.0 * largest / (gpu_gb * 1e9), gpu_gb,
              (gpu_gb * 1e9 - largest) / kGiB, largest > gpu_gb * 1e9 ? " -- does NOT fit" : "");
}

void PrintTime(const Plan& plan) {
  const int v = plan.schedule.chunks, p = plan.stages(), m = plan.microbatches();
  const int virtual_stages = plan.schedule.virtual_stages();
  int slowest = 0;
  for (int vs = 1; vs < virtual_stages; ++vs) {
    if (plan.stage_ms[vs] > plan.stage_ms[slowest]) slowest = vs;
  }
  double mean_ms = 0;
  for (double ms : plan.stage_ms) mean_ms += ms / virtual_stages;
  std::printf(
      "\nstep: %.4g ms simulated (pipeline only); slowest virtual stage %d at %.4g ms per "
      "micro-batch (%.2fx the mean)\n",
      plan.sim.step_time, slowest, plan.stage_ms[slowest], plan.stage_ms[slowest] / mean_ms);
  // Equal stages, no communication. The executor sends the input gradient
  // upstream before W, so W is off the critical path: the ramp costs
  // (p−1)·(F+B) of one chunk, against v·m·(F+B+W) of work, i.e. with
  // F = B = W: 2(p−1)/(3vm + 2(p−1)). The textbook form counts a fused
  // backward in the ramp: (p−1)/(vm + p−1).
  const double ramp = 2.0 * (p - 1), textbook_ramp = p - 1;
  const double split = ramp / (3.0 * v * m + ramp);
  const double textbook = textbook_ramp / (static_cast<double>(v) * m + textbook_ramp);
  std::printf(
      "bubble: simulated %.4f (mean over ranks); closed form %.4f = (p-1)(F+B)/(vm(F+B+W)+"
      "(p-1)(F+B)) with W after SEND_B, %.4f = (p-1)/(vm+p-1) with a fused backward "
      "(p=%d m=%d v=%d)\n",
      plan.sim.bubble_fraction, split, textbook, p, m, v);
  // The gradient all-reduce of the rank holding the most parameters, ring
  // algorithm, after the pipeline flush (not overlapped).
  int64_t most = 0;
  for (const RankMemory& r : plan.ranks) most = std::max(most, r.params);
  const double allreduce_ms =
      plan.dp > 1 && plan.gbps > 0
          ? 2.0 * (plan.dp - 1) / plan.dp * most * kGradBytes / (plan.gbps * 1e9) * 1e3
          : 0.0;
  const double step_s = (plan.sim.step_time + allreduce_ms) / 1e3;
  std::printf(
      "data-parallel all-reduce: %.4g ms (ring over %d replicas, fp32 gradients of %s "
      "parameters at %g GB/s, not overlapped); step %.4g ms\n",
      allreduce_ms, plan.dp, Grouped(most).c_str(), plan.gbps, step_s * 1e3);
  const double tokens =
      static_cast<double>(plan.shape.sequences) * plan.tokens_per_sequence() * m * plan.dp;
  const double tflops_per_gpu = plan.model_flops * m * plan.dp / step_s / plan.world / 1e12;
  std::printf("throughput: %s tokens/s; %.1f model TFLOP/s per GPU (%.1f%% of %g)\n",
              Grouped(static_cast<int64_t>(tokens / step_s)).c_str(), tflops_per_gpu,
              100.0 * tflops_per_gpu / plan.tflops, plan.tflops);
}

}  // namespace

absl::Status RunPlanCommand(const std::vector<std::string>& set_overrides) {
  PT_RETURN_IF_ERROR(CheckFlags());
  PT_ASSIGN_OR_RETURN(const Plan plan, MakePlan(set_overrides));
  PrintLayout(plan);
  PrintStages(plan);
  PrintTime(plan);
  const std::string trace = absl::GetFlag(FLAGS_trace);
  if (!trace.empty()) {
    // Simulated milliseconds shown as real ones.
    PT_RETURN_IF_ERROR(WriteChromeTrace(trace, plan.sim, /*us_per_unit=*/1000.0));
    std::printf("trace: %s (open in chrome://tracing or https://ui.perfetto.dev)\n", trace.c_str());
  }
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace pipetrain
