// Where the layers of a run go: the virtual stages' layer ranges (from the
// partition policy), each stage's activation-checkpointing flags, and the
// schedule — all read from the resolved training config.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_STAGE_LAYOUT_H_
#define PIPETRAIN_LAUNCHER_TRAINER_STAGE_LAYOUT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "parallel/partition.h"
#include "parallel/schedule.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// The most tokens a side of one training pair holds: corpus.max_length for
// a corpus run, synthetic.max_length otherwise.
int64_t LongestPairSide(const RunSpec& spec);
// The shape the cost model and the balanced partitioner plan with: pairs of
// LongestPairSide tokens a side, as the model's stacks read them.
TransformerShape ShapeOf(const RunSpec& spec);
// The partition of the layers into pipeline.stages × chunks virtual stages by
// pipeline.partition, with modelled costs.
absl::StatusOr<Partition> PartitionFromConfig(const RunSpec& spec);

// bounds[vs] is the first global layer of virtual stage vs (encoder layers
// 0..N−1, then decoder layers); bounds.back() is the layer count.
absl::StatusOr<std::vector<int>> StageBounds(const RunSpec& spec);

// One flag per layer of virtual stage `vs`: recompute its activations in
// backward. "full" marks every layer; "every" marks global layers g with
// g % recompute_every == recompute_every − 1; "none" gives an empty list.
absl::StatusOr<std::vector<bool>> RecomputeFlags(const RunSpec& spec, int virtual_stage,
                                                 const std::vector<int>& bounds);

// The schedule pipeline.schedule names, with pipeline.chunks chunks per rank,
// for `stages` ranks and `microbatches`. `pipeline` is resolved (its schedule
// set; LoadRunSpec fills the default).
absl::StatusOr<Schedule> BuildScheduleFromConfig(const PipelineConfig& pipeline, int stages,
                                                 int microbatches);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_STAGE_LAYOUT_H_
