#include "launcher/trainer/stage_layout.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "parallel/partition.h"

namespace pipetrain {

int64_t LongestPairSide(const RunSpec& spec) {
  const TrainConfig& train = spec.train();
  return train.corpus().dir().empty() ? train.synthetic().max_length()
                                      : train.corpus().max_length();
}

TransformerShape ShapeOf(const RunSpec& spec) {
  const ModelSpec& m = spec.model();
  // Plan with the data's longest pairs: up to `side` tokens a side (a corpus
  // pair's language tag included). The encoder reads the source as is; the
  // decoder reads <s> + target (core/data/collate.cc).
  const int64_t side = LongestPairSide(spec);
  int64_t source = side, target = side + 1;
  // One-stack models have one sequence: a decoder-only model reads
  // source <s> target, an encoder-only one its source.
  if (m.kind() == DECODER_ONLY) {
    source = 0;
    target = 2 * side + 1;
  } else if (m.kind() == ENCODER_ONLY) {
    target = 0;
  }
  return TransformerShape{.encoder_layers = m.encoder_layers(),
                          .decoder_layers = m.decoder_layers(),
                          .d_model = m.d_model(),
                          .ffn_dim = m.ffn_dim(),
                          .vocab = m.vocab_size(),
                          .source_length = source,
                          .target_length = target};
}

absl::StatusOr<Partition> PartitionFromConfig(const RunSpec& spec) {
  const PipelineConfig& pipe = spec.train().pipeline();
  const int virtual_stages = pipe.stages() * pipe.chunks();
  PT_ASSIGN_OR_RETURN(const LayerCosts costs, ModelledLayerCosts(ShapeOf(spec)));
  if (pipe.partition() == "explicit") {
    std::vector<LayerRange> ranges;
    int first = 0;
    for (int b : pipe.boundaries()) {
      ranges.push_back({first, b});
      first = b;
    }
    ranges.push_back({first, spec.model().encoder_layers() + spec.model().decoder_layers()});
    return PartitionExplicit(costs, virtual_stages, ranges);
  }
  if (pipe.partition() == "balanced") return PartitionCostBalanced(costs, virtual_stages);
  return PartitionUniform(costs, virtual_stages);
}

absl::StatusOr<std::vector<int>> StageBounds(const RunSpec& spec) {
  PT_ASSIGN_OR_RETURN(const Partition partition, PartitionFromConfig(spec));
  std::vector<int> bounds;
  for (const StagePartition& stage : partition.stages) bounds.push_back(stage.layers.first);
  bounds.push_back(partition.layers());
  return bounds;
}

absl::StatusOr<std::vector<bool>> RecomputeFlags(const RunSpec& spec, int virtual_stage,
                                                 const std::vector<int>& bounds) {
  const PipelineConfig& pipe = spec.train().pipeline();
  const std::string policy = pipe.stage_recompute_size() > virtual_stage
                                 ? pipe.stage_recompute(virtual_stage)
                                 : pipe.recompute();
  std::vector<bool> flags;
  if (policy == "none" || policy.empty()) return flags;
  const int every = pipe.recompute_every();
  for (int g = bounds[virtual_stage]; g < bounds[virtual_stage + 1]; ++g) {
    if (policy == "full") {
      flags.push_back(true);
    } else if (policy == "every") {
      flags.push_back(every > 0 && g % every == every - 1);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown recompute policy \"", policy, "\"; use none, full or every"));
    }
  }
  return flags;
}

absl::StatusOr<Schedule> BuildScheduleFromConfig(const PipelineConfig& pipeline, int stages,
                                                 int microbatches) {
  return BuildSchedule(pipeline.schedule(), stages, microbatches, pipeline.chunks());
}

}  // namespace pipetrain
