#include "launcher/stage_layout.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain {

absl::StatusOr<std::vector<int>> StageBounds(const RunSpec& spec) {
  const PipelineConfig& pipe = spec.train().pipeline();
  const int layers = spec.model().encoder_layers() + spec.model().decoder_layers();
  const int virtual_stages = pipe.stages() * pipe.chunks();
  if (virtual_stages > layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(virtual_stages, " virtual stages (pipeline.stages x chunks) for ", layers,
                     " layers: every virtual stage needs at least one layer"));
  }
  std::vector<int> bounds;
  if (pipe.partition() == "explicit") {
    bounds.push_back(0);
    for (int b : pipe.boundaries()) bounds.push_back(b);
    bounds.push_back(layers);
    return bounds;
  }
  if (pipe.partition() == "balanced") {
    return absl::UnimplementedError("partition=balanced: being wired to parallel/partition");
  }
  for (int vs = 0; vs <= virtual_stages; ++vs) {
    bounds.push_back(static_cast<int>(static_cast<int64_t>(vs) * layers / virtual_stages));
  }
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
  ScheduleKind kind;
  if (pipeline.schedule() == "gpipe") {
    kind = ScheduleKind::kGpipe;
  } else if (pipeline.schedule() == "1f1b") {
    kind = ScheduleKind::k1F1B;
  } else if (pipeline.schedule() == "interleaved") {
    kind = ScheduleKind::kInterleaved1F1B;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.pipeline.schedule=\"", pipeline.schedule(), "\" is not gpipe, 1f1b or interleaved"));
  }
  return BuildSchedule(kind, stages, microbatches, pipeline.chunks());
}

}  // namespace pipetrain
