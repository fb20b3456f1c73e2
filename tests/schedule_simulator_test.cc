// The simulator against closed forms: the pipeline bubble of GPipe, 1F1B and
// interleaved 1F1B, their peak live activations, hand-timed small runs with
// communication costs, and deadlocks named with their wait cycle.
#include "parallel/schedule_simulator.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config/enum_spelling.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parallel/schedule.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;

constexpr PipelineSchedule kKinds[] = {SCHEDULE_GPIPE, SCHEDULE_1F1B, SCHEDULE_INTERLEAVED_1F1B};

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

SimulationCosts Costs(double f, double b, double w) {
  SimulationCosts costs;
  costs.compute = {f, b, w};
  return costs;
}

// Calls `body(kind, p, m, v, schedule)` for every shape of the grid the
// builder accepts.
template <typename Body>
void ForEachShape(Body body) {
  for (PipelineSchedule kind : kKinds) {
    for (int p : {1, 2, 3, 4, 8}) {
      for (int m = 1; m <= 16; ++m) {
        for (int v : {1, 2, 3, 4}) {
          if (kind == SCHEDULE_INTERLEAVED_1F1B ? m % p != 0 : v != 1) continue;
          absl::StatusOr<Schedule> s = BuildSchedule(kind, p, m, v);
          ASSERT_TRUE(s.ok()) << s.status();
          SCOPED_TRACE(absl::StrCat(EnumSpelling(kind), " p=", p, " m=", m, " v=", v));
          body(kind, p, m, v, *s);
        }
      }
    }
  }
}

// With uniform per-chunk costs t_f, t_b (W inside B), the step is
// (v·m + p − 1)(t_f + t_b): v·m chunk passes of work plus p − 1 passes to fill
// and drain, so every rank idles (p − 1)/(v·m + p − 1) of it. GPipe and 1F1B
// are v = 1.
TEST(SimulatorTest, BubbleMatchesTheClosedForm) {
  int shapes = 0;
  ForEachShape([&](PipelineSchedule, int p, int m, int v, const Schedule& s) {
    ++shapes;
    absl::StatusOr<SimulationResult> r = SimulateSchedule(s, Costs(1, 2, 0));
    ASSERT_TRUE(r.ok()) << r.status();
    const double expected = double(p - 1) / (v * m + p - 1);
    EXPECT_EQ(r->step_time, 3.0 * (v * m + p - 1));
    EXPECT_NEAR(r->bubble_fraction, expected, 1e-12);
    for (int rank = 0; rank < p; ++rank) {
      EXPECT_NEAR(r->ranks[rank].bubble_fraction, expected, 1e-12) << "rank " << rank;
      EXPECT_EQ(r->ranks[rank].compute_time, 3.0 * v * m);
    }
    // The same with the model's cost split over the chunks: a chunk's F costs
    // 1/v and its B 2/v, so the bubble shrinks v-fold in time.
    r = SimulateSchedule(s, Costs(1.0 / v, 2.0 / v, 0));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_NEAR(r->step_time, 3.0 * (m + double(p - 1) / v), 1e-12 * r->step_time);
    for (int rank = 0; rank < p; ++rank) {
      EXPECT_NEAR(r->ranks[rank].bubble_fraction, expected, 1e-12) << "rank " << rank;
    }
  });
  EXPECT_EQ(shapes, 2 * 5 * 16 + (16 + 8 + 5 + 4 + 2) * 4);
}

// W as its own action after SEND_B is off the gradient's path to the previous
// stage, so fill and drain cost only t_f + t_b per stage:
// bubble = (p − 1)(t_f + t_b) / (v·m(t_f + t_b + t_w) + (p − 1)(t_f + t_b)).
TEST(SimulatorTest, SplitWeightGradientLeavesTheDrain) {
  ForEachShape([&](PipelineSchedule, int p, int m, int v, const Schedule& s) {
    absl::StatusOr<SimulationResult> r = SimulateSchedule(s, Costs(1, 1, 1));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->step_time, 3.0 * v * m + 2.0 * (p - 1));
    const double expected = 2.0 * (p - 1) / (3.0 * v * m + 2.0 * (p - 1));
    for (int rank = 0; rank < p; ++rank) {
      EXPECT_NEAR(r->ranks[rank].bubble_fraction, expected, 1e-12) << "rank " << rank;
    }
  });
}

// GPipe holds every micro-batch; 1F1B min(p − r, m) on rank r; interleaved
// its warm-up plus one: min(v·m, (v − 1)·p + 2·(p − r − 1) + 1).
TEST(SimulatorTest, PeakLiveActivations) {
  ForEachShape([&](PipelineSchedule kind, int p, int m, int v, const Schedule& s) {
    absl::StatusOr<SimulationResult> r = SimulateSchedule(s, Costs(1, 2, 0));
    ASSERT_TRUE(r.ok()) << r.status();
    for (int rank = 0; rank < p; ++rank) {
      int expected = std::min(p - rank, m);
      if (kind == SCHEDULE_GPIPE) expected = m;
      if (kind == SCHEDULE_INTERLEAVED_1F1B && v > 1) {
        expected = std::min(v * m, (v - 1) * p + 2 * (p - rank - 1) + 1);
      }
      EXPECT_EQ(r->ranks[rank].peak_live_activations, expected) << "rank " << rank;
      EXPECT_EQ(r->ranks[rank].peak_pending_weight_grads, 1) << "rank " << rank;
    }
  });
}

// p = 2, m = 1 by hand, F = 1, B = 2, W = 0.5, send 0.25, recv 0.25, latency 0.5:
//   r0: F [0,1]  SEND_F [1,1.25] -> arrives 1.75
//   r1: RECV_F [1.75,2]  F [2,3]  B [3,5]  SEND_B [5,5.25] -> 5.75  W [5.25,5.75]
//   r0: RECV_B [5.75,6]  B [6,8]  W [8,8.5]
TEST(SimulatorTest, HandTimedRunWithCommunication) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_1F1B, 2, 1, 1);
  ASSERT_TRUE(s.ok());
  SimulationCosts costs = Costs(1, 2, 0.5);
  costs.send = 0.25;
  costs.recv = 0.25;
  costs.latency = 0.5;
  absl::StatusOr<SimulationResult> r = SimulateSchedule(*s, costs);
  ASSERT_TRUE(r.ok()) << r.status();
  auto times = [&](int rank) {
    std::string out;
    for (const TimedAction& t : r->ranks[rank].timeline) {
      absl::StrAppend(&out, FormatAction(t.action), "[", t.start, ",", t.end, "] ");
    }
    return out;
  };
  EXPECT_EQ(times(0), "F0c0[0,1] SEND_F0c0>1[1,1.25] RECV_B0c0<1[5.75,6] B0c0[6,8] W0c0[8,8.5] ");
  EXPECT_EQ(times(1),
            "RECV_F0c0<0[1.75,2] F0c0[2,3] B0c0[3,5] SEND_B0c0>0[5,5.25] W0c0[5.25,5.75] ");
  EXPECT_EQ(r->step_time, 8.5);
  EXPECT_EQ(r->ranks[0].finish_time, 8.5);
  EXPECT_EQ(r->ranks[1].finish_time, 5.75);
  EXPECT_EQ(r->ranks[0].comm_time, 0.5);
  EXPECT_DOUBLE_EQ(r->ranks[0].bubble_fraction, (8.5 - 3.5) / 8.5);
  EXPECT_DOUBLE_EQ(r->ranks[1].bubble_fraction, (8.5 - 3.5) / 8.5);
}

// GPipe, p = 2, m = 3, stage 1 twice as slow (F = 2, B = 4; stage 0 F = 1, B = 2):
// stage 1 forwards end at 3, 5, 7; its backwards at 11, 15, 19; stage 0's
// backwards wait for them and end at 13, 17, 21.
TEST(SimulatorTest, PerStageCosts) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_GPIPE, 2, 3, 1);
  ASSERT_TRUE(s.ok());
  SimulationCosts costs;
  costs.per_virtual_stage = {{1, 2, 0}, {2, 4, 0}};
  absl::StatusOr<SimulationResult> r = SimulateSchedule(*s, costs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step_time, 21);
  EXPECT_EQ(r->ranks[1].finish_time, 19);
  EXPECT_DOUBLE_EQ(r->ranks[0].bubble_fraction, 12.0 / 21);
  EXPECT_DOUBLE_EQ(r->ranks[1].bubble_fraction, 3.0 / 21);

  costs.per_virtual_stage.pop_back();
  EXPECT_THAT(Msg(SimulateSchedule(*s, costs).status()),
              HasSubstr("per_virtual_stage has 1 entries"));
}

TEST(SimulatorTest, RejectsBadCostsAndInvalidSchedules) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_1F1B, 2, 2, 1);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(Msg(SimulateSchedule(*s, Costs(-1, 1, 1)).status()), HasSubstr("forward = -1"));
  SimulationCosts costs;
  costs.latency = std::numeric_limits<double>::infinity();
  EXPECT_THAT(Msg(SimulateSchedule(*s, costs).status()), HasSubstr("latency"));
  s->ranks[1].erase(s->ranks[1].begin());  // RECV_F0c0<0
  EXPECT_THAT(Msg(SimulateSchedule(*s).status()), HasSubstr("invalid pipeline schedule"));
}

// Each list is valid on its own, but rank 0 waits for micro-batch 0's gradient
// before sending micro-batch 1, and rank 1 wants micro-batch 1 before it
// starts any backward.
TEST(SimulatorTest, NamesATwoRankDeadlock) {
  absl::StatusOr<Schedule> s = ParseSchedule(
      "r0: F0c0 SEND_F0c0>1 RECV_B0c0<1 B0c0 W0c0 F1c0 SEND_F1c0>1 RECV_B1c0<1 B1c0 W1c0\n"
      "r1: RECV_F0c0<0 F0c0 RECV_F1c0<0 F1c0 B0c0 SEND_B0c0>0 W0c0 B1c0 SEND_B1c0>0 W1c0\n",
      2, 1);
  ASSERT_TRUE(s.ok()) << s.status();
  const absl::Status status = SimulateSchedule(*s).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status), HasSubstr("deadlocks after 4 of 20 actions"));
  EXPECT_THAT(Msg(status), HasSubstr("rank 0 is blocked at RECV_B0c0<1 (action 2), waiting for "
                                     "SEND_B0c0>0 (action 5 of rank 1), which rank 1 has not "
                                     "reached"));
  EXPECT_THAT(Msg(status), HasSubstr("rank 1 is blocked at RECV_F1c0<0 (action 2), waiting for "
                                     "SEND_F1c0>1 (action 6 of rank 0)"));
  EXPECT_THAT(Msg(status), HasSubstr("wait cycle: rank 0 -> rank 1 -> rank 0"));
}

// Three ranks: the same cycle between ranks 0 and 1 stalls rank 2 too, which
// is blocked but not part of the cycle.
TEST(SimulatorTest, NamesTheCycleAmongBlockedRanks) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_1F1B, 3, 2, 1);
  ASSERT_TRUE(s.ok());
  std::vector<Action>& r0 = s->ranks[0];
  ASSERT_EQ(FormatAction(r0[2]), "F1c0");
  ASSERT_EQ(FormatAction(r0[4]), "RECV_B0c0<1");
  std::rotate(r0.begin() + 2, r0.begin() + 4, r0.begin() + 5);  // receive before F1c0
  const absl::Status status = SimulateSchedule(*s).status();
  EXPECT_THAT(Msg(status), HasSubstr("rank 2 is blocked at RECV_F1c0<1"));
  EXPECT_THAT(Msg(status), HasSubstr("wait cycle: rank 0 -> rank 1 -> rank 0"));
}

TEST(SimulatorTest, OneRankHasNoBubble) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_INTERLEAVED_1F1B, 1, 5, 3);
  ASSERT_TRUE(s.ok());
  absl::StatusOr<SimulationResult> r = SimulateSchedule(*s, Costs(1, 2, 0.5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step_time, 5 * 3 * 3.5);
  EXPECT_EQ(r->bubble_fraction, 0);
}

}  // namespace
}  // namespace pipetrain
