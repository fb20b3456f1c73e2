#include "parallel/placement_checks.h"

#include <initializer_list>
#include <string>

#include "absl/strings/str_cat.h"

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
  const int stages = pipe.stages() == 0 ? 1 : pipe.stages();
  const int chunks = pipe.chunks() == 0 ? 1 : pipe.chunks();
  // Unset means 1F1B: one chunk per rank, any number of micro-batches.
  const bool interleaved = pipe.schedule() == SCHEDULE_INTERLEAVED_1F1B;
  const std::string partition = pipe.partition().empty() ? "uniform" : pipe.partition();
  const int layers = m.encoder_layers() + m.decoder_layers();
  if (stages < 1) p.Add("train.pipeline.stages=", pipe.stages(), " must be >= 1");
  if (chunks < 1) p.Add("train.pipeline.chunks=", pipe.chunks(), " must be >= 1");
  if (t.data_parallel() < 0) {
    p.Add("train.data_parallel=", t.data_parallel(), " must be >= 1 (0 means 1)");
  }
  // Text format takes any number for an open enum (`schedule: 7`).
  if (!PipelineSchedule_IsValid(pipe.schedule())) {
    p.Add("train.pipeline.schedule=", static_cast<int>(pipe.schedule()),
          " is not a schedule; use gpipe, 1f1b or interleaved");
  }
  if (!interleaved && chunks != 1) {
    p.Add("train.pipeline.chunks=", chunks, " needs train.pipeline.schedule=interleaved");
  }
  const int microbatches = t.microbatches() == 0 ? 1 : t.microbatches();
  if (interleaved && stages >= 1 && microbatches % stages != 0) {
    p.Add("train.microbatches=", microbatches,
          " must be a multiple of train.pipeline.stages=", stages, " for the interleaved schedule");
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
    int previous = 0;
    for (int i = 0; i < pipe.boundaries_size(); ++i) {
      const int b = pipe.boundaries(i);
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
  for (int i = 0; i < pipe.stage_recompute_size(); ++i) {
    check_recompute(absl::StrCat("stage_recompute[", i, "]"), pipe.stage_recompute(i));
  }
  if (pipe.stage_recompute_size() > 0 && pipe.stage_recompute_size() != stages * chunks) {
    p.Add("train.pipeline.stage_recompute has ", pipe.stage_recompute_size(),
          " entries; give one per virtual stage (", stages * chunks, ")");
  }
  bool every = pipe.recompute() == "every";
  for (const std::string& r : pipe.stage_recompute()) every = every || r == "every";
  if (every && pipe.recompute_every() < 1) {
    p.Add("train.pipeline.recompute_every=", pipe.recompute_every(),
          " must be >= 1 when a recompute policy is \"every\"");
  }
}

}  // namespace

void CheckPlacement(const RunSpec& spec, SpecProblems& problems) {
  CheckPipeline(spec.train(), spec.model(), problems);
}

}  // namespace pipetrain
