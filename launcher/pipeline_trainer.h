// The multi-rank trainer: this rank's chunks of a pipeline replica, the
// schedule it executes, and the end-of-step collectives (data-parallel
// gradient sum, tied-embedding sync, global gradient norm), then the same
// clipping and AdamW as one process. With the same seed and data it
// reproduces the one-process run bit for bit when only placement changes
// (pipeline stages, chunks, schedule, activation checkpointing).
#ifndef PIPETRAIN_LAUNCHER_PIPELINE_TRAINER_H_
#define PIPETRAIN_LAUNCHER_PIPELINE_TRAINER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "launcher/model_pipeline_stage.h"
#include "launcher/step_data.h"
#include "launcher/trainer.h"
#include "models/checkpoint.h"
#include "parallel/communicator.h"
#include "parallel/schedule.h"
#include "parallel/topology.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

class PipelineTrainer {
 public:
  // Collective over `world`. The spec must be resolved.
  static absl::StatusOr<std::unique_ptr<PipelineTrainer>> Create(const RunSpec& spec,
                                                                 Communicator& world);

  // One optimizer step; every rank returns the same metrics.
  absl::StatusOr<StepMetrics> Step();
  // Collective: the digest of every parameter in layer order (as one process
  // prints it), on every rank.
  absl::StatusOr<std::string> ParamsDigest();
  // Collective: calls `visit` on every rank with every parameter block in
  // layer order (together: one process's flat parameter buffer).
  absl::Status VisitParameters(const std::function<void(const Tensor&)>& visit);

  // Collective: every rank writes the layer files of its chunks (replica 0
  // only; the tied embedding by the stage holding layer 0) into one
  // checkpoint of `run_dir`, which rank 0 then completes. Loads with any
  // other split (by tensor name).
  absl::Status SaveCheckpoint(const std::string& run_dir);
  // Collective: true on every rank when `mine` is true on some rank.
  absl::StatusOr<bool> AnyRank(bool mine);
  // Every rank fills its chunks, moments, step and data position.
  absl::Status RestoreCheckpoint(const CheckpointReader& reader);

  int64_t step() const { return step_; }
  StepData& data() { return *data_; }
  const Topology& topology() const { return topology_; }
  int64_t parameters() const;  // this rank's
  // The largest number of (micro-batch, chunk) activations this rank held at
  // once during the last step.
  int peak_live_activations() const { return stage_->peak_live(); }
  // What the schedule simulator predicts for it.
  int simulated_peak_live_activations() const { return simulated_peak_live_; }
  // Collective over the pipeline: "measured a b c, simulated a b c" by stage.
  absl::StatusOr<std::string> PeakLiveReport();
  // First global layer of every virtual stage, and one past the last.
  const std::vector<int>& bounds() const { return bounds_; }

 private:
  PipelineTrainer(const RunSpec& spec, Communicator& world, Topology topology);
  absl::Status Build();
  absl::Status SyncEmbedding();
  absl::StatusOr<double> GlobalGradSquares();
  int VirtualStage(int chunk) const { return chunk * topology_.pipeline_stages + topology_.stage; }

  RunSpec spec_;
  std::unique_ptr<StepData> data_;
  Communicator& world_;
  Topology topology_;
  ProcessGroups groups_;
  std::vector<int> bounds_;
  Schedule schedule_;
  std::unique_ptr<ModelPipelineStage> stage_;
  std::vector<Tensor> adam_m_, adam_v_;  // per chunk
  int64_t step_ = 0;
  int simulated_peak_live_ = 0;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_PIPELINE_TRAINER_H_
