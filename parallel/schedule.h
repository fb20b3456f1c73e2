// Pipeline schedules as data (DESIGN.md decision 4): for every rank, the list
// of actions it runs in one optimizer step. Builders are pure functions; the
// validator (schedule_validator.h) proves the lists consistent and the
// simulator (schedule_simulator.h) times them. See docs/pipeline-schedules.md.
//
// Placement: p ranks, v chunks per rank, p·v virtual stages (contiguous slices
// of the model, in model order). Chunk c of rank r is virtual stage c·p + r
// (Megatron's interleaving), so with v = 1 rank r is stage r.
//
// Every built schedule uses the same local pattern around compute:
//   RECV_F  F  SEND_F            (no RECV_F on the first virtual stage, no SEND_F on the last)
//   RECV_B  B  SEND_B  W         (no RECV_B on the last, no SEND_B on the first)
// W follows its B at once in these schedules, after the gradient has been sent
// upstream so that the previous stage never waits for it; zero-bubble
// schedules move W later. Neighbouring virtual stages on the same rank (p = 1)
// hand over locally, without SEND/RECV.
#ifndef PIPETRAIN_PARALLEL_SCHEDULE_H_
#define PIPETRAIN_PARALLEL_SCHEDULE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "parallel/action.h"
#include "proto/train_config.pb.h"

namespace pipetrain {

struct Schedule {
  int stages = 1;        // p: ranks in the pipeline
  int microbatches = 1;  // m
  int chunks = 1;        // v: chunks per rank
  // placement[r][c]: the virtual stage computed by chunk c of rank r.
  std::vector<std::vector<int>> placement;
  // ranks[r]: rank r's actions in execution order.
  std::vector<std::vector<Action>> ranks;

  int virtual_stages() const { return stages * chunks; }
  int VirtualStage(int rank, int chunk) const { return placement[rank][chunk]; }
};

// placement[r][c] = c·p + r.
std::vector<std::vector<int>> InterleavedPlacement(int stages, int chunks);

// The schedule of `kind` (the spec's enum, proto/train_config.proto) for
// p = `stages` ranks, m = `microbatches` and v = `chunks` chunks per rank.
// Errors name the argument and what is expected (v must be 1 for GPipe and
// 1F1B; interleaved 1F1B needs m to be a multiple of p, because it advances
// micro-batches in groups of p; PIPELINE_SCHEDULE_UNSPECIFIED is refused, as
// a resolved spec never holds it). Interleaved with v = 1 is plain 1F1B.
// A user's word for a schedule ("1f1b") becomes the enum through
// FindEnumValue (core/config/enum_spelling.h); EnumSpelling prints it back.
absl::StatusOr<Schedule> BuildSchedule(PipelineSchedule kind, int stages, int microbatches,
                                       int chunks);

// One line per rank: "r0: F0c0 SEND_F0c0>1 F1c0 ...".
std::string FormatSchedule(const Schedule& schedule);

// Inverse of FormatSchedule: one "r<k>:" line per rank in rank order (blank
// lines ignored), interleaved placement. The number of ranks is the number of
// lines; m and v are given because a schedule that forgets a micro-batch must
// not silently shrink m.
absl::StatusOr<Schedule> ParseSchedule(absl::string_view text, int microbatches, int chunks);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_SCHEDULE_H_
