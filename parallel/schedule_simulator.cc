#include "parallel/schedule_simulator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "parallel/schedule_validator.h"

namespace pipetrain {
namespace {

// A message is named by its direction, micro-batch, the virtual stage that
// sends it and the rank that receives it: exactly one SEND and one RECV carry
// each name in a valid schedule, whatever order they are posted in.
using MessageKey = std::tuple<bool, int, int, int>;  // backward, mb, sender stage, to rank

MessageKey SendKey(const Schedule& s, int rank, const Action& a) {
  return {a.type == ActionType::kSendBackward, a.microbatch, s.VirtualStage(rank, a.chunk), a.peer};
}

MessageKey RecvKey(const Schedule& s, int rank, const Action& a) {
  const bool backward = a.type == ActionType::kRecvBackward;
  const int stage = s.VirtualStage(rank, a.chunk);
  return {backward, a.microbatch, backward ? stage + 1 : stage - 1, rank};
}

absl::Status CheckCost(double value, const std::string& name) {
  PT_CHECK_ARG(std::isfinite(value) && value >= 0, "simulation cost ", name, " = ", value,
               ", expected a finite value >= 0");
  return absl::OkStatus();
}

absl::Status CheckCosts(const Schedule& s, const SimulationCosts& costs) {
  auto check_compute = [](const ComputeCosts& c, const std::string& where) -> absl::Status {
    PT_RETURN_IF_ERROR(CheckCost(c.forward, where + "forward"));
    PT_RETURN_IF_ERROR(CheckCost(c.backward, where + "backward"));
    return CheckCost(c.weight, where + "weight");
  };
  PT_RETURN_IF_ERROR(check_compute(costs.compute, ""));
  PT_CHECK_ARG(costs.per_virtual_stage.empty() ||
                   static_cast<int>(costs.per_virtual_stage.size()) == s.virtual_stages(),
               "simulation costs: per_virtual_stage has ", costs.per_virtual_stage.size(),
               " entries; expected none or one per virtual stage (", s.virtual_stages(), ")");
  for (size_t i = 0; i < costs.per_virtual_stage.size(); ++i) {
    PT_RETURN_IF_ERROR(
        check_compute(costs.per_virtual_stage[i], absl::StrCat("of virtual stage ", i, ": ")));
  }
  PT_RETURN_IF_ERROR(CheckCost(costs.send, "send"));
  PT_RETURN_IF_ERROR(CheckCost(costs.recv, "recv"));
  return CheckCost(costs.latency, "latency");
}

double ComputeCost(const Schedule& s, const SimulationCosts& costs, int rank, const Action& a) {
  const ComputeCosts& c = costs.per_virtual_stage.empty()
                              ? costs.compute
                              : costs.per_virtual_stage[s.VirtualStage(rank, a.chunk)];
  switch (a.type) {
    case ActionType::kForward:
      return c.forward;
    case ActionType::kBackward:
      return c.backward;
    case ActionType::kWeight:
      return c.weight;
    default:
      return 0.0;
  }
}

// Activation counts follow the list order alone: actions of one rank never
// overlap, so timing cannot change them.
void CountActivations(const std::vector<Action>& list, RankSimulation* out) {
  int live = 0, pending = 0;
  for (const Action& a : list) {
    if (a.type == ActionType::kForward) {
      out->peak_live_activations = std::max(out->peak_live_activations, ++live);
    } else if (a.type == ActionType::kBackward) {
      --live;
      out->peak_pending_weight_grads = std::max(out->peak_pending_weight_grads, ++pending);
    } else if (a.type == ActionType::kWeight) {
      --pending;
    }
  }
}

// Every rank left is blocked at a RECV whose SEND another blocked rank has not
// reached (validation guarantees the SEND exists), so following "waits for"
// from any of them ends in a cycle.
absl::Status DeadlockError(const Schedule& s, const std::vector<size_t>& pos) {
  std::vector<std::string> lines;
  std::vector<int> waits_for(s.stages, -1);
  size_t done = 0, total = 0;
  for (int r = 0; r < s.stages; ++r) {
    total += s.ranks[r].size();
    done += pos[r];
    if (pos[r] == s.ranks[r].size()) continue;
    const Action& a = s.ranks[r][pos[r]];
    const MessageKey key = RecvKey(s, r, a);
    const int q = a.peer;
    waits_for[r] = q;
    size_t send_at = 0;
    while (send_at < s.ranks[q].size() &&
           !(IsSend(s.ranks[q][send_at].type) && SendKey(s, q, s.ranks[q][send_at]) == key)) {
      ++send_at;
    }
    const std::string send_name =
        send_at < s.ranks[q].size() ? FormatAction(s.ranks[q][send_at]) : "its SEND";
    std::string line =
        absl::StrCat("rank ", r, " is blocked at ", FormatAction(a), " (action ", pos[r],
                     "), waiting for ", send_name, " (action ", send_at, " of rank ", q, ")");
    if (pos[q] < s.ranks[q].size()) {
      absl::StrAppend(&line, ", which rank ", q, " has not reached");
    }
    lines.push_back(line);
  }
  // Walk the waits-for links from the first blocked rank until one repeats.
  int start = 0;
  while (waits_for[start] < 0) ++start;
  std::vector<int> seen_at(s.stages, -1);
  std::vector<int> path;
  for (int r = start; seen_at[r] < 0; r = waits_for[r]) {
    seen_at[r] = static_cast<int>(path.size());
    path.push_back(r);
    if (waits_for[r] < 0) break;  // cannot happen for a validated schedule
  }
  std::vector<std::string> cycle;
  const int back_to = waits_for[path.back()];
  if (back_to >= 0 && seen_at[back_to] >= 0) {
    for (size_t i = seen_at[back_to]; i < path.size(); ++i) {
      cycle.push_back(absl::StrCat("rank ", path[i]));
    }
    cycle.push_back(absl::StrCat("rank ", back_to));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "pipeline schedule deadlocks after ", done, " of ", total,
      " actions: ", absl::StrJoin(lines, "; "),
      cycle.empty() ? "" : absl::StrCat("; wait cycle: ", absl::StrJoin(cycle, " -> "))));
}

}  // namespace

absl::StatusOr<SimulationResult> SimulateSchedule(const Schedule& s, const SimulationCosts& costs) {
  PT_RETURN_IF_ERROR(ValidateSchedule(s));
  PT_RETURN_IF_ERROR(CheckCosts(s, costs));

  SimulationResult result;
  result.ranks.resize(s.stages);
  std::vector<size_t> pos(s.stages, 0);
  std::vector<double> clock(s.stages, 0.0);
  std::map<MessageKey, double> arrival;  // sent, not yet received

  // Each rank runs until it blocks at a RECV whose message is not yet sent.
  // A rank's times depend only on its list and the arrival times it reads, so
  // the order in which ranks are advanced does not change the result.
  bool progress = true;
  while (progress) {
    progress = false;
    for (int r = 0; r < s.stages; ++r) {
      RankSimulation& rank = result.ranks[r];
      while (pos[r] < s.ranks[r].size()) {
        const Action& a = s.ranks[r][pos[r]];
        double start = clock[r], end = clock[r];
        if (IsRecv(a.type)) {
          auto it = arrival.find(RecvKey(s, r, a));
          if (it == arrival.end()) break;
          start = std::max(clock[r], it->second);
          end = start + costs.recv;
          rank.comm_time += costs.recv;
          arrival.erase(it);
        } else if (IsSend(a.type)) {
          end = start + costs.send;
          rank.comm_time += costs.send;
          arrival[SendKey(s, r, a)] = end + costs.latency;
        } else {
          const double cost = ComputeCost(s, costs, r, a);
          end = start + cost;
          rank.compute_time += cost;
        }
        rank.timeline.push_back({a, start, end});
        clock[r] = end;
        ++pos[r];
        progress = true;
      }
    }
  }
  for (int r = 0; r < s.stages; ++r) {
    if (pos[r] < s.ranks[r].size()) return DeadlockError(s, pos);
  }

  for (int r = 0; r < s.stages; ++r) {
    result.ranks[r].finish_time = clock[r];
    result.step_time = std::max(result.step_time, clock[r]);
    CountActivations(s.ranks[r], &result.ranks[r]);
  }
  for (RankSimulation& rank : result.ranks) {
    rank.bubble_fraction =
        result.step_time > 0 ? (result.step_time - rank.compute_time) / result.step_time : 0.0;
    result.bubble_fraction += rank.bubble_fraction / s.stages;
  }
  return result;
}

}  // namespace pipetrain
