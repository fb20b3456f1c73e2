#include "parallel/placement_checks.h"

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/config/spec_bounds.h"

namespace pipetrain {
namespace {

bool OneOf(const std::string& value, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (value == a) return true;
  }
  return false;
}

// Values are checked as their defaults when unset (0 or empty).
void CheckPipeline(const TrainConfig& t, const ModelSpec& m, SpecProblems& p) {
  const PipelineConfig& pipe = t.pipeline();
  const int64_t stages = pipe.stages() == 0 ? 1 : pipe.stages();
  const int64_t chunks = pipe.chunks() == 0 ? 1 : pipe.chunks();
  // Unset means 1F1B: one chunk per rank, any number of micro-batches.
  const bool interleaved = pipe.schedule() == SCHEDULE_INTERLEAVED_1F1B;
  const std::string partition = pipe.partition().empty() ? "uniform" : pipe.partition();
  // Sums and products of fields in int64: each field is bounded below, but
  // the checks run on every field whatever the others hold.
  const int64_t layers = int64_t{m.encoder_layers()} + m.decoder_layers();
  const int64_t replicas = t.data_parallel() == 0 ? 1 : t.data_parallel();
  if (stages < 1) p.Add("train.pipeline.stages=", pipe.stages(), " must be >= 1");
  if (stages > spec_bounds::kMaxStages) {
    p.Add("train.pipeline.stages=", stages, " is above the limit of ", spec_bounds::kMaxStages,
          "; use fewer stages");
  }
  if (chunks < 1) p.Add("train.pipeline.chunks=", pipe.chunks(), " must be >= 1");
  if (chunks > spec_bounds::kMaxChunks) {
    p.Add("train.pipeline.chunks=", chunks, " is above the limit of ", spec_bounds::kMaxChunks,
          "; use fewer chunks per rank");
  }
  if (t.data_parallel() < 0) {
    p.Add("train.data_parallel=", t.data_parallel(), " must be >= 1 (0 means 1)");
  }
  if (replicas > spec_bounds::kMaxDataParallel) {
    p.Add("train.data_parallel=", replicas, " is above the limit of ",
          spec_bounds::kMaxDataParallel, "; use fewer replicas");
  }
  if (stages >= 1 && replicas >= 1 && stages * replicas > spec_bounds::kMaxWorldSize) {
    p.Add("train.pipeline.stages=", stages, " x train.data_parallel=", replicas, " = ",
          stages * replicas, " ranks is above the limit of ", spec_bounds::kMaxWorldSize);
  }
  // Text format takes any number for an open enum (`schedule: 7`).
  if (!PipelineSchedule_IsValid(pipe.schedule())) {
    p.Add("train.pipeline.schedule=", static_cast<int>(pipe.schedule()),
          " is not a schedule; use gpipe, 1f1b or interleaved");
  }
  if (!interleaved && chunks != 1) {
    p.Add("train.pipeline.chunks=", chunks, " needs train.pipeline.schedule=interleaved");
  }
  const int64_t microbatches = t.microbatches() == 0 ? 1 : t.microbatches();
  // The step's micro-batches over all replicas; the loader asks each
  // direction for that many pairs (an int).
  if (microbatches >= 1 && replicas >= 1 &&
      microbatches * replicas > spec_bounds::kMaxStepMicrobatches) {
    p.Add("train.microbatches=", microbatches, " x train.data_parallel=", replicas, " = ",
          microbatches * replicas, " micro-batches per step is above the limit of ",
          spec_bounds::kMaxStepMicrobatches, "; use fewer micro-batches or replicas");
  }
  if (interleaved && stages >= 1 && microbatches % stages != 0) {
    p.Add("train.microbatches=", microbatches,
          " must be a multiple of train.pipeline.stages=", stages, " for the interleaved schedule");
  }
  if (stages >= 1 && chunks >= 1 && microbatches >= 1 &&
      stages * chunks * microbatches > spec_bounds::kMaxScheduleSlots) {
    p.Add("train.pipeline.stages=", stages, " x chunks=", chunks,
          " x train.microbatches=", microbatches, " = ", stages * chunks * microbatches,
          " schedule slots is above the limit of ", spec_bounds::kMaxScheduleSlots,
          " (every rank holds the whole schedule); use fewer micro-batches or stages");
  }
  if (stages >= 1 && chunks >= 1 && layers > 0 && stages * chunks > layers) {
    p.Add("train.pipeline.stages=", stages, " x chunks=", chunks, " virtual stages exceed the ",
          layers, " layers of the model; every virtual stage needs at least one layer");
  }
  if (!OneOf(partition, {"uniform", "balanced", "explicit"})) {
    p.Add("train.pipeline.partition=\"", pipe.partition(),
          "\" is not a partition; use uniform, balanced or explicit");
  }
  if (partition == "explicit") {
    if (pipe.boundaries_size() != stages * chunks - 1) {
      p.Add("train.pipeline.boundaries has ", pipe.boundaries_size(),
            " entries; partition=explicit", " needs stages x chunks - 1 = ", stages * chunks - 1,
            " (the first layer of every virtual stage after the first)");
    }
    int64_t previous = 0;
    // Entry by entry only when the count is near right: a hostile list of
    // millions would otherwise give a line each.
    const int listed = pipe.boundaries_size() <= stages * chunks ? pipe.boundaries_size() : 0;
    for (int i = 0; i < listed; ++i) {
      const int64_t b = pipe.boundaries(i);
      if (b <= previous || b >= layers) {
        p.Add("train.pipeline.boundaries[", i, "]=", b, " must be ascending and inside (0, ",
              layers, ")");
      }
      previous = b;
    }
  } else if (pipe.boundaries_size() > 0) {
    p.Add("train.pipeline.boundaries is set but partition is ", partition,
          "; set partition=explicit or drop the boundaries");
  }
  auto check_recompute = [&](const std::string& field, const std::string& value) {
    if (!value.empty() && !OneOf(value, {"none", "full", "every"})) {
      p.Add("train.pipeline.", field, "=\"", value, "\" is not a policy; use none, full or every");
    }
  };
  check_recompute("recompute", pipe.recompute());
  const int policies =
      pipe.stage_recompute_size() <= stages * chunks ? pipe.stage_recompute_size() : 0;
  for (int i = 0; i < policies; ++i) {
    check_recompute(absl::StrCat("stage_recompute[", i, "]"), pipe.stage_recompute(i));
  }
  if (pipe.stage_recompute_size() > 0 && pipe.stage_recompute_size() != stages * chunks) {
    p.Add("train.pipeline.stage_recompute has ", pipe.stage_recompute_size(),
          " entries; give one per virtual stage (", stages * chunks, ")");
  }
  bool every = pipe.recompute() == "every";
  for (const std::string& r : pipe.stage_recompute()) every = every || r == "every";
  if (pipe.recompute_every() < 0) {
    p.Add("train.pipeline.recompute_every=", pipe.recompute_every(), " must be >= 0");
  } else if (every && pipe.recompute_every() < 1) {
    p.Add("train.pipeline.recompute_every=", pipe.recompute_every(),
          " must be >= 1 when a recompute policy is \"every\"");
  }
}

}  // namespace

void CheckPlacement(const RunSpec& spec, SpecProblems& problems) {
  CheckPipeline(spec.train(), spec.model(), problems);
}

}  // namespace pipetrain
