// The placement rules of a run spec, kept beside the schedules and the
// partitioner they protect (core/ checks fields, not ranks): stages, chunks
// and data-parallel replicas in range; the schedule a PipelineSchedule, with
// chunks only for the interleaved one, whose micro-batches come in groups of
// `stages`; no more virtual stages than layers; an explicit partition's
// boundaries inside the model; one recompute policy per virtual stage.
#ifndef PIPETRAIN_PARALLEL_PLACEMENT_CHECKS_H_
#define PIPETRAIN_PARALLEL_PLACEMENT_CHECKS_H_

#include "core/config/spec_problems.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// A SpecCheck: adds a line to `problems` for every rule `spec` (defaults
// applied; a value left 0 is checked as its default) breaks.
void CheckPlacement(const RunSpec& spec, SpecProblems& problems);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_PLACEMENT_CHECKS_H_
