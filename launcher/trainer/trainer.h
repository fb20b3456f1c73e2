// The trainer: one training loop for every placement (DESIGN.md decision 9).
// A rank holds its chunks of one pipeline replica, runs the schedule's
// actions for them, and ends each step with the same collectives (the
// data-parallel gradient sum, the tied-embedding sync, the global gradient
// norm), clipping and AdamW. One process is the 1-stage × 1-replica case:
// the same code, with a LocalCommunicator instead of MPI.
//
// Placement (stages, replicas, chunks, schedule, recompute, device) changes
// where work runs, never what is computed: with the same seed and data every
// pipeline-only placement reproduces the one-process run bit for bit, on
// the CPU and on the emulated device alike (docs/parallel.md says which
// placements are bitwise and why the others are not).
//
// Devices (train.device): "cpu"; "cuda" (f32 or bf16; one GPU per node-local
// rank, boundary tensors and gradient sums over NCCL, or host-staged MPI when
// two ranks share a GPU); "emulated" (host memory treated as GPU memory, the
// CPU kernels, host-staged transfers: the GPU orchestration, proven without
// a GPU). Checkpoints, validation and the digest go through host copies.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_TRAINER_H_
#define PIPETRAIN_LAUNCHER_TRAINER_TRAINER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "launcher/trainer/model_pipeline_stage.h"
#include "launcher/trainer/step_data.h"
#include "models/checkpoint.h"
#include "parallel/communicator.h"
#include "parallel/schedule.h"
#include "parallel/topology.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// Per-layer statistics of one step (train.layer_stats_interval), in global
// layer order: "embed", "encoder.0", …, "encoder.final_ln", "decoder.0", …,
// "decoder.final_ln", "output" (those the model has). Every parameter belongs
// to exactly one entry, so the squares of grad_norm add up to the step's
// grad_norm². NaN where a value does not apply (residual_rms of the
// embedding, final LNs and output; update_ratio of a skipped step).
struct LayerStats {
  std::vector<std::string> layers;
  std::vector<double> grad_norm;     // before clipping, after the data-parallel sum
  std::vector<double> update_ratio;  // ||W_after − W_before|| / ||W_before||
  // RMS of the layer's output hidden states over every element of the
  // step's micro-batches (all positions, pad included); under data
  // parallelism the printing rank's replica (replica 0).
  std::vector<double> residual_rms;
};

struct StepMetrics {
  int64_t step = 0;  // 1-based number of the update just made
  double loss = 0;   // smoothed loss per target token (nats)
  double nll = 0;    // −log p(target) per target token (nats)
  double lr = 0;
  double grad_norm = 0;       // before clipping
  int64_t target_tokens = 0;  // label tokens of the step
  int64_t source_tokens = 0;  // non-pad source tokens of the step
  int sentences = 0;
  double seconds = 0;  // wall time of the step
  // A step whose loss or gradients are not finite, or whose update would
  // make a weight or an AdamW moment non-finite, is not applied (the data and
  // the schedule move on): see docs/training.md, "Divergence".
  bool skipped = false;
  int64_t skipped_steps = 0;      // since this process started
  int64_t skipped_in_a_row = 0;   // ending with this step
  int64_t nonfinite_updates = 0;  // elements the update would have spoilt (all ranks)
  // Filled on the steps train.layer_stats_interval names (empty otherwise).
  LayerStats layer_stats;
};

class Trainer {
 public:
  // Collective over `world`, a host-memory communicator (MPI, or a
  // LocalCommunicator for one process) that must outlive the trainer. The
  // spec must be resolved. On a device that cannot be used (no GPU, say)
  // every rank returns the error with its reason; none falls back.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const RunSpec& spec, Communicator& world);
  // One process, no launcher.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const RunSpec& spec);
  ~Trainer();

  // One optimizer step; every rank returns the same metrics.
  absl::StatusOr<StepMetrics> Step();

  // Collective: the digest of every parameter in layer order (as one process
  // prints it), on every rank.
  absl::StatusOr<std::string> ParamsDigest();
  // Collective: calls `visit` on every rank with every parameter block in
  // layer order, on the host (together: one process's flat parameter buffer
  // in the CPU layout).
  absl::Status VisitParameters(const std::function<void(const Tensor&)>& visit);
  // Collective: that buffer as one host tensor on the ranks that `keep` it
  // (undefined elsewhere).
  absl::StatusOr<Tensor> GatherParameters(bool keep);

  // Collective: every rank writes the layer files of its chunks (replica 0
  // only; the tied embedding by the stage holding layer 0) into one
  // checkpoint of `run_dir`, which rank 0 then completes. Device tensors go
  // through host copies. Loads with any other split or device (by name).
  absl::Status SaveCheckpoint(const std::string& run_dir);
  // Every rank fills its chunks, moments, step and data position.
  absl::Status RestoreCheckpoint(const CheckpointReader& reader);
  // Collective: true on every rank when `mine` is true on some rank.
  absl::StatusOr<bool> AnyRank(bool mine);

  int64_t step() const { return step_; }
  // Whether this rank opened the training data (stage 0 of each replica
  // does: it draws the batches and sends them along its pipeline).
  bool opened_data() const { return data_ != nullptr; }
  const Topology& topology() const { return topology_; }
  Communicator& world() { return *world_; }
  Device device() const { return device_; }
  int64_t parameters() const;  // this rank's
  // Test hook: the next step's gradients count as non-finite, as if a NaN
  // had reached them (tests of the skipping path; no effect otherwise).
  void PoisonNextGradientsForTest() { poison_next_gradients_ = true; }
  // The ModelStage of chunk c of this rank (for tests and decoding).
  ModelStage& chunk(int c) { return *stage_->chunks()[c]; }
  // The largest number of (micro-batch, chunk) activations this rank held at
  // once during the last step, and what the schedule simulator predicts.
  int peak_live_activations() const { return stage_->peak_live(); }
  int simulated_peak_live_activations() const { return simulated_peak_live_; }
  // Collective over the pipeline: "measured a b c, simulated a b c" by stage.
  absl::StatusOr<std::string> PeakLiveReport();
  // First global layer of every virtual stage, and one past the last.
  const std::vector<int>& bounds() const { return bounds_; }

 private:
  Trainer(const RunSpec& spec, Communicator& world, Topology topology);
  absl::Status Build();
  // Data-parallel gradient sums: a part of chunk c's gradients (a layer's
  // span of the flat buffer, or the whole chunk's embedding partials) is
  // ready as soon as its last accumulation is done; a transport that
  // overlaps collectives (NCCL) starts its sum at once, in buckets, while the
  // backward goes on; a blocking one (MPI, host-staged) after the schedule.
  // Every started sum is waited for after the schedule.
  absl::Status GradientsFinal(int c, const FlatSegment& span);
  absl::Status ChunkGradientsFinal(int c);
  absl::Status StartReadySums();
  absl::Status FinishGradientSums();
  absl::Status SyncEmbedding();
  absl::StatusOr<double> GlobalGradSquares();
  // Collective over the pipeline group: every virtual stage's list (this
  // rank's chunk c gives mine[c]), in global virtual-stage order, on every
  // rank of the group.
  absl::StatusOr<std::vector<std::vector<double>>> GatherByVirtualStage(
      const std::vector<std::vector<double>>& mine);
  // The statistics step: `before` holds each chunk's parameters before the
  // update (undefined when the step was skipped).
  absl::StatusOr<LayerStats> CollectLayerStats(std::vector<Tensor> before);
  absl::StatusOr<std::vector<Batch>> ToDevice(std::vector<Batch> batches) const;
  bool reads_data() const { return topology_.stage == 0; }
  int VirtualStage(int chunk) const { return chunk * topology_.pipeline_stages + topology_.stage; }

  RunSpec spec_;
  std::unique_ptr<Communicator> owned_world_;  // the LocalCommunicator of one process
  Communicator* world_;
  Topology topology_;
  Device device_ = Device::kCpu;
  DType dtype_ = DType::kF32;
  // Groups for host tensors (norms, flags, parameters for the digest) and for
  // the device's tensors (boundaries, gradients). On the CPU they are the
  // same MPI groups; on a device the second come from the device
  // communicator (NCCL, or host-staged MPI).
  ProcessGroups host_groups_;
  std::unique_ptr<Communicator> device_world_;
  ProcessGroups device_groups_;
  Communicator* pipeline_device_ = nullptr;
  Communicator* replicas_device_ = nullptr;
  std::unique_ptr<StepData> data_;  // on the ranks that reads_data()
  std::vector<int> bounds_;
  Schedule schedule_;
  std::unique_ptr<ModelPipelineStage> stage_;
  std::vector<Tensor> adam_m_, adam_v_;  // per chunk, on the device
  int64_t skipped_steps_ = 0;
  int64_t skipped_in_a_row_ = 0;
  bool poison_next_gradients_ = false;
  // Ready but not started: (chunk, span of its flat gradients); a negative
  // offset −1−u names embedding partial u.
  std::vector<std::pair<int, FlatSegment>> ready_;
  std::vector<std::unique_ptr<CommRequest>> pending_sums_;
  int64_t step_ = 0;
  int simulated_peak_live_ = 0;
  // Each chunk's per-parameter gradient sums of squares, kept by
  // GlobalGradSquares on statistics steps only.
  bool record_layer_stats_ = false;
  std::vector<std::vector<double>> grad_squares_by_chunk_;
  // Elements per data-parallel sum: 8 Mi f32 = 32 MiB, large enough for
  // NCCL's bandwidth, small enough that the first sums start early.
  static constexpr int64_t kGradientBucketElements = int64_t{8} << 20;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_TRAINER_H_
