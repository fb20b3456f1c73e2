#include "parallel/schedule_validator.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pipetrain {
namespace {

constexpr int kTypes = 7;
constexpr size_t kMaxListed = 10;

// Collects problems; the status lists the first kMaxListed.
class Problems {
 public:
  void Add(std::string message) { messages_.push_back(std::move(message)); }
  bool empty() const { return messages_.empty(); }
  absl::Status ToStatus() const {
    if (messages_.empty()) return absl::OkStatus();
    std::vector<std::string> shown(messages_.begin(),
                                   messages_.begin() + std::min(messages_.size(), kMaxListed));
    std::string text = absl::StrCat("invalid pipeline schedule: ", absl::StrJoin(shown, "; "));
    if (messages_.size() > kMaxListed) {
      absl::StrAppend(&text, "; and ", messages_.size() - kMaxListed, " more problems");
    }
    return absl::InvalidArgumentError(text);
  }

 private:
  std::vector<std::string> messages_;
};

std::string Named(const Action& action, int index) {
  return absl::StrCat(FormatAction(action), " (action ", index, ")");
}

bool CheckShape(const Schedule& s, Problems* problems) {
  if (s.stages < 1 || s.microbatches < 1 || s.chunks < 1) {
    problems->Add(absl::StrCat("stages = ", s.stages, ", micro-batches = ", s.microbatches,
                               ", chunks = ", s.chunks, "; all must be >= 1"));
    return false;
  }
  if (static_cast<int>(s.ranks.size()) != s.stages) {
    problems->Add(absl::StrCat("the schedule has ", s.ranks.size(), " action lists for ", s.stages,
                               " stages; expected one list per rank"));
  }
  if (static_cast<int>(s.placement.size()) != s.stages) {
    problems->Add(
        absl::StrCat("the placement has ", s.placement.size(), " ranks for ", s.stages, " stages"));
  }
  if (!problems->empty()) return false;
  // Each virtual stage must live on exactly one (rank, chunk).
  const int total = s.virtual_stages();
  std::vector<std::string> owner(total);
  for (int r = 0; r < s.stages; ++r) {
    if (static_cast<int>(s.placement[r].size()) != s.chunks) {
      problems->Add(absl::StrCat("rank ", r, " places ", s.placement[r].size(),
                                 " chunks; expected ", s.chunks));
      continue;
    }
    for (int c = 0; c < s.chunks; ++c) {
      const int stage = s.placement[r][c];
      const std::string here = absl::StrCat("rank ", r, " chunk ", c);
      if (stage < 0 || stage >= total) {
        problems->Add(
            absl::StrCat(here, " computes virtual stage ", stage, ", outside [0, ", total, ")"));
      } else if (!owner[stage].empty()) {
        problems->Add(absl::StrCat("virtual stage ", stage, " is placed on both ", owner[stage],
                                   " and ", here, "; each must live on exactly one rank"));
      } else {
        owner[stage] = here;
      }
    }
  }
  for (int stage = 0; stage < total && problems->empty(); ++stage) {
    if (owner[stage].empty())
      problems->Add(absl::StrCat("virtual stage ", stage, " is on no rank"));
  }
  return problems->empty();
}

bool CheckRanges(const Schedule& s, Problems* problems) {
  for (int r = 0; r < s.stages; ++r) {
    for (size_t i = 0; i < s.ranks[r].size(); ++i) {
      const Action& a = s.ranks[r][i];
      const std::string where = absl::StrCat("rank ", r, ": ", Named(a, i));
      if (a.microbatch < 0 || a.microbatch >= s.microbatches) {
        problems->Add(absl::StrCat(where, " names micro-batch ", a.microbatch, ", outside [0, ",
                                   s.microbatches, ")"));
      }
      if (a.chunk < 0 || a.chunk >= s.chunks) {
        problems->Add(
            absl::StrCat(where, " names chunk ", a.chunk, ", outside [0, ", s.chunks, ")"));
      }
      if (IsCompute(a.type) && a.peer != -1) {
        problems->Add(absl::StrCat(where, " has peer ", a.peer, "; compute actions have none"));
      }
      if (!IsCompute(a.type) && (a.peer < 0 || a.peer >= s.stages || a.peer == r)) {
        problems->Add(absl::StrCat(where, " has peer ", a.peer, "; expected another rank in [0, ",
                                   s.stages, ")"));
      }
    }
  }
  return problems->empty();
}

// Positions of every action of one rank, by type and (micro-batch, chunk).
class RankIndex {
 public:
  RankIndex(const Schedule& s, int rank) : chunks_(s.chunks) {
    for (auto& slot : where_) slot.resize(static_cast<size_t>(s.microbatches) * s.chunks);
    for (size_t i = 0; i < s.ranks[rank].size(); ++i) {
      const Action& a = s.ranks[rank][i];
      where_[static_cast<int>(a.type)][Key(a.microbatch, a.chunk)].push_back(static_cast<int>(i));
    }
  }
  const std::vector<int>& Find(ActionType type, int mb, int chunk) const {
    return where_[static_cast<int>(type)][Key(mb, chunk)];
  }

 private:
  size_t Key(int mb, int chunk) const { return static_cast<size_t>(mb) * chunks_ + chunk; }
  int chunks_;
  std::array<std::vector<std::vector<int>>, kTypes> where_;
};

}  // namespace

absl::Status ValidateSchedule(const Schedule& s) {
  Problems problems;
  if (!CheckShape(s, &problems) || !CheckRanges(s, &problems)) return problems.ToStatus();

  const int total = s.virtual_stages();
  std::vector<int> owner_rank(total), owner_chunk(total);
  for (int r = 0; r < s.stages; ++r) {
    for (int c = 0; c < s.chunks; ++c) {
      owner_rank[s.placement[r][c]] = r;
      owner_chunk[s.placement[r][c]] = c;
    }
  }

  for (int r = 0; r < s.stages; ++r) {
    const RankIndex index(s, r);
    const std::vector<Action>& list = s.ranks[r];
    for (int mb = 0; mb < s.microbatches; ++mb) {
      for (int c = 0; c < s.chunks; ++c) {
        const int stage = s.placement[r][c];
        const std::string here = absl::StrCat("rank ", r, " (virtual stage ", stage, ")");
        // The one position of `type`, or -1 after reporting why there is not one.
        auto once = [&](ActionType type, int peer, const std::string& why) -> int {
          const std::vector<int>& at = index.Find(type, mb, c);
          const std::string name = FormatAction({type, mb, c, peer});
          if (at.size() == 1) return at[0];
          if (at.empty()) {
            problems.Add(absl::StrCat(here, " never runs ", name, why));
          } else {
            problems.Add(absl::StrCat(here, " runs ", name, " ", at.size(), " times (actions ",
                                      absl::StrJoin(at, ", "), "); expected once"));
          }
          return -1;
        };
        // A SEND/RECV the neighbour needs (`peer` >= 0: the rank of virtual
        // stage `neighbour`) or must not have (`peer` < 0, because of `none`).
        auto comm = [&](ActionType type, int peer, int neighbour, const char* none) -> int {
          if (peer >= 0) {
            const std::string on = absl::StrCat("virtual stage ", neighbour, " is on rank ", peer);
            const int at = once(type, peer, absl::StrCat(" (", on, ")"));
            if (at >= 0 && list[at].peer != peer) {
              problems.Add(absl::StrCat(here, ": ", Named(list[at], at),
                                        IsSend(type) ? " sends to" : " receives from", " rank ",
                                        list[at].peer, ", but ", on));
            }
            return at;
          }
          for (int at : index.Find(type, mb, c)) {
            problems.Add(absl::StrCat(here, ": ", Named(list[at], at), " is not needed: ", none));
          }
          return -1;
        };
        auto before = [&](int first, int second) {
          if (first >= 0 && second >= 0 && first > second) {
            problems.Add(absl::StrCat(here, ": ", Named(list[first], first), " must come before ",
                                      Named(list[second], second)));
          }
        };

        // Neighbours on another rank exchange messages; on this rank they
        // hand over locally (checked below).
        const bool first_stage = stage == 0, last_stage = stage == total - 1;
        const int prev = first_stage || owner_rank[stage - 1] == r ? -1 : owner_rank[stage - 1];
        const int next = last_stage || owner_rank[stage + 1] == r ? -1 : owner_rank[stage + 1];
        const char* no_prev = first_stage ? "the first virtual stage has no previous stage"
                                          : "the previous virtual stage is on the same rank";
        const char* no_next = last_stage ? "the last virtual stage has no next stage"
                                         : "the next virtual stage is on the same rank";
        const int f = once(ActionType::kForward, -1, "");
        const int b = once(ActionType::kBackward, -1, "");
        const int w = once(ActionType::kWeight, -1, "");
        const int recv_f = comm(ActionType::kRecvForward, prev, stage - 1, no_prev);
        const int send_f = comm(ActionType::kSendForward, next, stage + 1, no_next);
        const int recv_b = comm(ActionType::kRecvBackward, next, stage + 1, no_next);
        const int send_b = comm(ActionType::kSendBackward, prev, stage - 1, no_prev);
        before(recv_f, f);
        before(f, send_f);
        before(recv_b, b);
        before(b, send_b);
        before(f, b);
        before(b, w);
        if (!last_stage && owner_rank[stage + 1] == r) {
          const int c_next = owner_chunk[stage + 1];
          const std::vector<int>& f_next = index.Find(ActionType::kForward, mb, c_next);
          const std::vector<int>& b_next = index.Find(ActionType::kBackward, mb, c_next);
          if (f_next.size() == 1) before(f, f_next[0]);
          if (b_next.size() == 1) before(b_next[0], b);
        }
      }
    }
  }
  // Matching needs no pass of its own: a SEND from stage s to the rank of
  // stage s ± 1 is required exactly when that rank is required to RECV it from
  // this one, and both peers were checked against the placement above.
  return problems.ToStatus();
}

}  // namespace pipetrain
