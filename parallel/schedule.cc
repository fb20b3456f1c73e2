#include "parallel/schedule.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/config/enum_spelling.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

// A compute step before the communication around it is added.
struct Step {
  bool forward;
  int microbatch;
  int chunk;
};

// Appends `step` to `rank`'s list with the SEND/RECV it needs. With the
// interleaved placement virtual stage s lives on rank s % p, chunk s / p.
void AppendWithComms(const Step& step, int rank, int p, int v, std::vector<Action>* out) {
  const int s = step.chunk * p + rank;
  const int last = p * v - 1;
  const int mb = step.microbatch;
  const int c = step.chunk;
  // Neighbours on this same rank (only when p == 1) hand over locally.
  const bool has_prev = s > 0 && (s - 1) % p != rank;
  const bool has_next = s < last && (s + 1) % p != rank;
  const int prev_rank = (s - 1 + p) % p;
  const int next_rank = (s + 1) % p;
  if (step.forward) {
    if (has_prev) out->push_back({ActionType::kRecvForward, mb, c, prev_rank});
    out->push_back(Forward(mb, c));
    if (has_next) out->push_back({ActionType::kSendForward, mb, c, next_rank});
  } else {
    if (has_next) out->push_back({ActionType::kRecvBackward, mb, c, next_rank});
    out->push_back(Backward(mb, c));
    if (has_prev) out->push_back({ActionType::kSendBackward, mb, c, prev_rank});
    out->push_back(Weight(mb, c));
  }
}

std::vector<Step> GpipeSteps(int m) {
  std::vector<Step> steps;
  for (int mb = 0; mb < m; ++mb) steps.push_back({true, mb, 0});
  for (int mb = 0; mb < m; ++mb) steps.push_back({false, mb, 0});
  return steps;
}

// Warm-up: enough forwards to fill the pipeline below this rank; steady
// state: one forward, one backward; cool-down: the remaining backwards.
// Rank r holds at most min(p − r, m) activations.
std::vector<Step> OneFOneBSteps(int p, int m, int rank) {
  const int warmup = std::min(p - rank - 1, m);
  std::vector<Step> steps;
  for (int mb = 0; mb < warmup; ++mb) steps.push_back({true, mb, 0});
  for (int i = 0; i < m - warmup; ++i) {
    steps.push_back({true, warmup + i, 0});
    steps.push_back({false, i, 0});
  }
  for (int mb = m - warmup; mb < m; ++mb) steps.push_back({false, mb, 0});
  return steps;
}

// Megatron's interleaving. Each rank walks m·v "virtual micro-batches": the
// k-th forward runs micro-batch (k / (p·v))·p + k % p on chunk (k / p) % v, so
// micro-batches advance through a chunk in groups of p, exactly the time the
// group's first micro-batch needs to travel round the other p − 1 ranks and
// come back for the next chunk. Backwards walk the chunks in reverse. Warm-up
// covers the forwards rank r can run before the first gradient can reach it:
// (v − 1)·p for the first v − 1 chunks, plus 2·(p − r − 1) for the trip of
// micro-batch 0 down the last chunk and of its gradient back up.
std::vector<Step> InterleavedSteps(int p, int m, int v, int rank) {
  const int total = m * v;
  auto forward_at = [&](int k) { return Step{true, (k / (p * v)) * p + k % p, (k / p) % v}; };
  auto backward_at = [&](int k) {
    return Step{false, (k / (p * v)) * p + k % p, v - 1 - (k / p) % v};
  };
  const int warmup = std::min(total, 2 * (p - rank - 1) + (v - 1) * p);
  std::vector<Step> steps;
  for (int k = 0; k < warmup; ++k) steps.push_back(forward_at(k));
  for (int i = 0; i < total - warmup; ++i) {
    steps.push_back(forward_at(warmup + i));
    steps.push_back(backward_at(i));
  }
  for (int k = total - warmup; k < total; ++k) steps.push_back(backward_at(k));
  return steps;
}

}  // namespace

std::vector<std::vector<int>> InterleavedPlacement(int stages, int chunks) {
  std::vector<std::vector<int>> placement(stages, std::vector<int>(chunks));
  for (int r = 0; r < stages; ++r) {
    for (int c = 0; c < chunks; ++c) placement[r][c] = c * stages + r;
  }
  return placement;
}

absl::StatusOr<Schedule> BuildSchedule(PipelineSchedule kind, int stages, int microbatches,
                                       int chunks) {
  PT_CHECK_ARG(kind == SCHEDULE_GPIPE || kind == SCHEDULE_1F1B || kind == SCHEDULE_INTERLEAVED_1F1B,
               "pipeline schedule ", EnumSpelling(kind), " is not one BuildSchedule knows; use ",
               EnumChoices(PipelineSchedule_descriptor()));
  const std::string name = EnumSpelling(kind);
  PT_CHECK_ARG(stages >= 1, name, " schedule: stages (p) = ", stages, ", expected >= 1");
  PT_CHECK_ARG(microbatches >= 1, name, " schedule: micro-batches (m) = ", microbatches,
               ", expected >= 1");
  PT_CHECK_ARG(chunks >= 1, name, " schedule: chunks per rank (v) = ", chunks, ", expected >= 1");
  // Each (micro-batch, chunk, rank) becomes at most 7 actions; keep the lists
  // to a size a planner can print and a step can run.
  const int64_t work = int64_t{stages} * microbatches * chunks;
  PT_CHECK_ARG(work <= (int64_t{1} << 24), name, " schedule: p·m·v = ", work,
               " is too large (at most 2^24)");
  if (kind != SCHEDULE_INTERLEAVED_1F1B) {
    PT_CHECK_ARG(chunks == 1, name, " schedule: chunks per rank (v) = ", chunks,
                 ", expected 1 (use interleaved for several chunks per rank)");
  } else {
    PT_CHECK_ARG(microbatches % stages == 0, name, " schedule: micro-batches (m) = ", microbatches,
                 " is not a multiple of the stages (p) = ", stages,
                 ": interleaving advances micro-batches in groups of p; use m = ",
                 (microbatches / stages + 1) * stages, " or 1f1b");
  }

  Schedule schedule;
  schedule.stages = stages;
  schedule.microbatches = microbatches;
  schedule.chunks = chunks;
  schedule.placement = InterleavedPlacement(stages, chunks);
  schedule.ranks.resize(stages);
  for (int r = 0; r < stages; ++r) {
    std::vector<Step> steps;
    if (kind == SCHEDULE_GPIPE) {
      steps = GpipeSteps(microbatches);
    } else if (kind == SCHEDULE_1F1B || chunks == 1) {
      steps = OneFOneBSteps(stages, microbatches, r);
    } else {
      steps = InterleavedSteps(stages, microbatches, chunks, r);
    }
    for (const Step& step : steps) {
      AppendWithComms(step, r, stages, chunks, &schedule.ranks[r]);
    }
  }
  return schedule;
}

std::string FormatSchedule(const Schedule& schedule) {
  std::string out;
  for (size_t r = 0; r < schedule.ranks.size(); ++r) {
    absl::StrAppend(&out, "r", r, ":");
    for (const Action& action : schedule.ranks[r]) absl::StrAppend(&out, " ", FormatAction(action));
    out += "\n";
  }
  return out;
}

absl::StatusOr<Schedule> ParseSchedule(absl::string_view text, int microbatches, int chunks) {
  PT_CHECK_ARG(microbatches >= 1, "ParseSchedule: micro-batches = ", microbatches,
               ", expected >= 1");
  PT_CHECK_ARG(chunks >= 1, "ParseSchedule: chunks = ", chunks, ", expected >= 1");
  Schedule schedule;
  schedule.microbatches = microbatches;
  schedule.chunks = chunks;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const int rank = static_cast<int>(schedule.ranks.size());
    const std::string prefix = absl::StrCat("r", rank, ":");
    if (!absl::ConsumePrefix(&line, prefix)) {
      return absl::InvalidArgumentError(absl::StrCat("schedule line ", line_number,
                                                     ": expected it to start with \"", prefix,
                                                     "\" (one line per rank, in rank order)"));
    }
    std::vector<Action> actions;
    for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
      absl::StatusOr<Action> action = ParseAction(word);
      if (!action.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("schedule line ", line_number, " (rank ",
                                                       rank, "): ", action.status().message()));
      }
      actions.push_back(*action);
    }
    schedule.ranks.push_back(std::move(actions));
  }
  PT_CHECK_ARG(!schedule.ranks.empty(), "ParseSchedule: no \"r0:\" line in the text");
  schedule.stages = static_cast<int>(schedule.ranks.size());
  schedule.placement = InterleavedPlacement(schedule.stages, chunks);
  return schedule;
}

}  // namespace pipetrain
