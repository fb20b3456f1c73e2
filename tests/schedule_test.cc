// Schedules as data: the action text form, the builders' lists (hand-derived
// small cases and invariants over a grid of shapes) and the validator, which
// must pass every built schedule and catch each kind of broken one.
#include "parallel/schedule.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/config/enum_spelling.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parallel/action.h"
#include "parallel/schedule_validator.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;

constexpr PipelineSchedule kKinds[] = {SCHEDULE_GPIPE, SCHEDULE_1F1B, SCHEDULE_INTERLEAVED_1F1B};

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

// Builds p, m, v, or says why the builder must refuse them.
bool ShouldBuild(PipelineSchedule kind, int p, int m, int v) {
  return kind == SCHEDULE_INTERLEAVED_1F1B ? m % p == 0 : v == 1;
}

TEST(ActionTest, TextRoundTrips) {
  const Action actions[] = {
      Forward(3, 1),
      Backward(0, 0),
      Weight(12, 7),
      {ActionType::kSendForward, 3, 1, 2},
      {ActionType::kRecvForward, 3, 1, 0},
      {ActionType::kSendBackward, 4, 0, 0},
      {ActionType::kRecvBackward, 15, 3, 2},
  };
  const char* texts[] = {"F3c1",        "B0c0",        "W12c7",       "SEND_F3c1>2",
                         "RECV_F3c1<0", "SEND_B4c0>0", "RECV_B15c3<2"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(FormatAction(actions[i]), texts[i]);
    absl::StatusOr<Action> parsed = ParseAction(texts[i]);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, actions[i]) << texts[i];
  }
}

TEST(ActionTest, ParseRejectsMalformedText) {
  for (const char* bad : {"", "X3c1", "F", "Fc1", "F3", "F3c", "F3c1>2", "SEND_F3c1", "SEND_F3c1<2",
                          "RECV_B3c1>2", "F3c1 ", "F-1c0", "F3c1x", "F9999999999c0"}) {
    absl::StatusOr<Action> parsed = ParseAction(bad);
    ASSERT_FALSE(parsed.ok()) << "accepted \"" << bad << "\"";
    EXPECT_THAT(Msg(parsed.status()), HasSubstr(absl::StrCat("\"", bad, "\"")));
  }
}

// A user's word for a schedule reaches BuildSchedule through the one parser
// (FindEnumValue); each schedule prints as the word users write.
TEST(ScheduleKindTest, SpellingsRoundTrip) {
  for (PipelineSchedule kind : kKinds) {
    const google::protobuf::EnumValueDescriptor* parsed =
        FindEnumValue(PipelineSchedule_descriptor(), EnumSpelling(kind));
    ASSERT_NE(parsed, nullptr) << EnumSpelling(kind);
    EXPECT_EQ(parsed->number(), kind);
  }
  EXPECT_EQ(EnumSpelling(SCHEDULE_GPIPE), "gpipe");
  EXPECT_EQ(EnumSpelling(SCHEDULE_1F1B), "1f1b");
  EXPECT_EQ(EnumSpelling(SCHEDULE_INTERLEAVED_1F1B), "interleaved");
  EXPECT_EQ(FindEnumValue(PipelineSchedule_descriptor(), "1F1B")->number(), SCHEDULE_1F1B);
  EXPECT_EQ(FindEnumValue(PipelineSchedule_descriptor(), "zb-h1"), nullptr);
}

TEST(ScheduleKindTest, UnspecifiedIsRefused) {
  EXPECT_THAT(Msg(BuildSchedule(PIPELINE_SCHEDULE_UNSPECIFIED, 2, 2, 1).status()),
              HasSubstr("PIPELINE_SCHEDULE_UNSPECIFIED is not one BuildSchedule knows"));
  EXPECT_THAT(Msg(BuildSchedule(static_cast<PipelineSchedule>(9), 2, 2, 1).status()),
              HasSubstr("use gpipe (SCHEDULE_GPIPE), 1f1b (SCHEDULE_1F1B)"));
}

// Hand-derived from the definitions: rank 0 warms up with one forward.
TEST(BuildScheduleTest, OneFOneBTwoStagesTwoMicrobatches) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_1F1B, 2, 2, 1);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(FormatSchedule(*s),
            "r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0 W1c0\n"
            "r1: RECV_F0c0<0 F0c0 B0c0 SEND_B0c0>0 W0c0 RECV_F1c0<0 F1c0 B1c0 SEND_B1c0>0 W1c0\n");
}

TEST(BuildScheduleTest, GpipeRunsAllForwardsFirst) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_GPIPE, 2, 2, 1);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(FormatSchedule(*s),
            "r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0 W1c0\n"
            "r1: RECV_F0c0<0 F0c0 RECV_F1c0<0 F1c0 B0c0 SEND_B0c0>0 W0c0 B1c0 SEND_B1c0>0 W1c0\n");
}

// p = 2, m = 2, v = 2: virtual stages 0, 1, 2, 3 on r0c0, r1c0, r0c1, r1c1.
// Warm-up is 2·(p − r − 1) + (v − 1)·p: all 4 forwards on rank 0, 2 on rank 1.
TEST(BuildScheduleTest, InterleavedTwoStagesTwoChunks) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_INTERLEAVED_1F1B, 2, 2, 2);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(FormatSchedule(*s),
            "r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_F0c1<1 F0c1 SEND_F0c1>1 RECV_F1c1<1 "
            "F1c1 SEND_F1c1>1 RECV_B0c1<1 B0c1 SEND_B0c1>1 W0c1 RECV_B1c1<1 B1c1 SEND_B1c1>1 "
            "W1c1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0 W1c0\n"
            "r1: RECV_F0c0<0 F0c0 SEND_F0c0>0 RECV_F1c0<0 F1c0 SEND_F1c0>0 RECV_F0c1<0 F0c1 "
            "B0c1 SEND_B0c1>0 W0c1 RECV_F1c1<0 F1c1 B1c1 SEND_B1c1>0 W1c1 RECV_B0c0<0 B0c0 "
            "SEND_B0c0>0 W0c0 RECV_B1c0<0 B1c0 SEND_B1c0>0 W1c0\n");
}

TEST(BuildScheduleTest, OneRankManyChunksHandsOverLocally) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_INTERLEAVED_1F1B, 1, 2, 3);
  ASSERT_TRUE(s.ok()) << s.status();
  for (const Action& a : s->ranks[0]) EXPECT_TRUE(IsCompute(a.type)) << FormatAction(a);
  EXPECT_TRUE(ValidateSchedule(*s).ok()) << ValidateSchedule(*s);
}

TEST(BuildScheduleTest, InterleavedWithOneChunkIsOneFOneB) {
  for (int p : {1, 2, 4}) {
    for (int m : {4, 8}) {
      EXPECT_EQ(FormatSchedule(*BuildSchedule(SCHEDULE_INTERLEAVED_1F1B, p, m, 1)),
                FormatSchedule(*BuildSchedule(SCHEDULE_1F1B, p, m, 1)));
    }
  }
}

TEST(BuildScheduleTest, RejectsBadShapesWithReasons) {
  EXPECT_THAT(Msg(BuildSchedule(SCHEDULE_1F1B, 0, 4, 1).status()), HasSubstr("stages (p)"));
  EXPECT_THAT(Msg(BuildSchedule(SCHEDULE_1F1B, 2, 0, 1).status()), HasSubstr("micro-batches (m)"));
  EXPECT_THAT(Msg(BuildSchedule(SCHEDULE_INTERLEAVED_1F1B, 2, 4, 0).status()),
              HasSubstr("chunks per rank (v)"));
  EXPECT_THAT(Msg(BuildSchedule(SCHEDULE_GPIPE, 2, 4, 2).status()),
              HasSubstr("use interleaved for several chunks per rank"));
  const std::string msg = Msg(BuildSchedule(SCHEDULE_INTERLEAVED_1F1B, 4, 6, 2).status());
  EXPECT_THAT(msg, HasSubstr("not a multiple of the stages (p) = 4"));
  EXPECT_THAT(msg, HasSubstr("m = 8"));
  EXPECT_FALSE(BuildSchedule(SCHEDULE_GPIPE, 4096, 4097, 1).ok());
}

// Every built schedule over the grid validates, runs each (micro-batch,
// chunk) once per rank in F, B, W order, and sends exactly across the
// boundaries between virtual stages on different ranks.
TEST(BuildScheduleTest, GridValidatesWithExpectedCounts) {
  int built = 0;
  for (PipelineSchedule kind : kKinds) {
    for (int p : {1, 2, 3, 4, 8}) {
      for (int m = 1; m <= 16; ++m) {
        for (int v : {1, 2, 3, 4}) {
          absl::StatusOr<Schedule> s = BuildSchedule(kind, p, m, v);
          ASSERT_EQ(s.ok(), ShouldBuild(kind, p, m, v))
              << EnumSpelling(kind) << " p" << p << " m" << m << " v" << v;
          if (!s.ok()) continue;
          ++built;
          ASSERT_TRUE(ValidateSchedule(*s).ok()) << ValidateSchedule(*s);
          std::map<ActionType, int> counts;
          for (const auto& list : s->ranks) {
            for (const Action& a : list) ++counts[a.type];
          }
          const int work = p * m * v;
          const int messages = p > 1 ? m * (p * v - 1) : 0;
          EXPECT_EQ(counts[ActionType::kForward], work);
          EXPECT_EQ(counts[ActionType::kBackward], work);
          EXPECT_EQ(counts[ActionType::kWeight], work);
          for (ActionType t : {ActionType::kSendForward, ActionType::kRecvForward,
                               ActionType::kSendBackward, ActionType::kRecvBackward}) {
            EXPECT_EQ(counts[t], messages) << ActionTypeName(t);
          }
          // Round trip through the text form.
          absl::StatusOr<Schedule> back = ParseSchedule(FormatSchedule(*s), m, v);
          ASSERT_TRUE(back.ok()) << back.status();
          EXPECT_EQ(back->ranks, s->ranks);
          EXPECT_EQ(back->placement, s->placement);
        }
      }
    }
  }
  EXPECT_EQ(built, 2 * 5 * 16 + (16 + 8 + 5 + 4 + 2) * 4);
}

TEST(ParseScheduleTest, RejectsBadLines) {
  EXPECT_THAT(Msg(ParseSchedule("r1: F0c0\n", 1, 1).status()), HasSubstr("\"r0:\""));
  EXPECT_THAT(Msg(ParseSchedule("r0: F0c0 X\n", 1, 1).status()), HasSubstr("line 1 (rank 0)"));
  EXPECT_FALSE(ParseSchedule("\n\n", 1, 1).ok());
  EXPECT_FALSE(ParseSchedule("r0: F0c0", 0, 1).ok());
}

// A correct 1F1B for p = 2, m = 2 as text; each broken variant below changes
// one thing.
constexpr char kGood[] =
    "r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0 W1c0\n"
    "r1: RECV_F0c0<0 F0c0 B0c0 SEND_B0c0>0 W0c0 RECV_F1c0<0 F1c0 B1c0 SEND_B1c0>0 W1c0\n";

std::string ValidateText(const std::string& text, int m = 2, int v = 1) {
  absl::StatusOr<Schedule> s = ParseSchedule(text, m, v);
  if (!s.ok()) return "parse: " + Msg(s.status());
  absl::Status status = ValidateSchedule(*s);
  return status.ok() ? "OK" : Msg(status);
}

TEST(ValidateScheduleTest, AcceptsTheGoodOne) { EXPECT_EQ(ValidateText(kGood), "OK"); }

TEST(ValidateScheduleTest, CatchesBackwardBeforeForward) {
  const std::string msg = ValidateText(
      "r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0 W1c0\n"
      "r1: RECV_F0c0<0 B0c0 F0c0 SEND_B0c0>0 W0c0 RECV_F1c0<0 F1c0 B1c0 SEND_B1c0>0 W1c0\n");
  EXPECT_THAT(msg, HasSubstr("rank 1 (virtual stage 1): F0c0 (action 2) must come before B0c0 "
                             "(action 1)"));
}

TEST(ValidateScheduleTest, CatchesWeightBeforeBackward) {
  const std::string msg = ValidateText(
      "r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 W0c0 B0c0 RECV_B1c0<1 B1c0 W1c0\n"
      "r1: RECV_F0c0<0 F0c0 B0c0 SEND_B0c0>0 W0c0 RECV_F1c0<0 F1c0 B1c0 SEND_B1c0>0 W1c0\n");
  EXPECT_THAT(msg, HasSubstr("B0c0 (action 6) must come before W0c0 (action 5)"));
}

TEST(ValidateScheduleTest, CatchesMissingRecv) {
  const std::string msg = ValidateText(
      "r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0 W1c0\n"
      "r1: RECV_F0c0<0 F0c0 B0c0 SEND_B0c0>0 W0c0 F1c0 B1c0 SEND_B1c0>0 W1c0\n");
  EXPECT_THAT(msg, HasSubstr("rank 1 (virtual stage 1) never runs RECV_F1c0<0 (virtual stage 0 "
                             "is on rank 0)"));
}

TEST(ValidateScheduleTest, CatchesSendToTheWrongPeer) {
  // Three ranks; rank 0 sends micro-batch 0 past its neighbour.
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_1F1B, 3, 3, 1);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(FormatAction(s->ranks[0][1]), "SEND_F0c0>1");
  s->ranks[0][1].peer = 2;
  const std::string msg = Msg(ValidateSchedule(*s));
  EXPECT_THAT(msg, HasSubstr("rank 0 (virtual stage 0): SEND_F0c0>2 (action 1) sends to rank 2, "
                             "but virtual stage 1 is on rank 1"));
}

TEST(ValidateScheduleTest, CatchesMissingAndDuplicatedCompute) {
  EXPECT_THAT(
      ValidateText("r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0\n"
                   "r1: RECV_F0c0<0 F0c0 B0c0 SEND_B0c0>0 W0c0 RECV_F1c0<0 F1c0 B1c0 SEND_B1c0>0 "
                   "W1c0\n"),
      HasSubstr("rank 0 (virtual stage 0) never runs W1c0"));
  EXPECT_THAT(
      ValidateText(
          "r0: F0c0 F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 W0c0 RECV_B1c0<1 B1c0 "
          "W1c0\n"
          "r1: RECV_F0c0<0 F0c0 B0c0 SEND_B0c0>0 W0c0 RECV_F1c0<0 F1c0 B1c0 SEND_B1c0>0 W1c0\n"),
      HasSubstr("runs F0c0 2 times (actions 0, 1)"));
}

TEST(ValidateScheduleTest, CatchesSendsThatNoStageNeeds) {
  EXPECT_THAT(
      ValidateText("r0: F0c0 SEND_F0c0>1 F1c0 SEND_F1c0>1 RECV_B0c0<1 B0c0 SEND_B0c0>1 W0c0 "
                   "RECV_B1c0<1 B1c0 W1c0\n"
                   "r1: RECV_F0c0<0 F0c0 B0c0 SEND_B0c0>0 W0c0 RECV_F1c0<0 F1c0 B1c0 SEND_B1c0>0 "
                   "W1c0\n"),
      HasSubstr("SEND_B0c0>1 (action 6) is not needed: the first virtual stage has no "
                "previous stage"));
}

TEST(ValidateScheduleTest, CatchesOutOfRangeFields) {
  EXPECT_THAT(ValidateText(kGood, /*m=*/1), HasSubstr("names micro-batch 1, outside [0, 1)"));
  EXPECT_THAT(ValidateText("r0: F0c0 B0c0 W0c0 F0c1 B0c1 W0c1\nr1: F0c0 B0c0 W0c0\n", 1, 1),
              HasSubstr("names chunk 1, outside [0, 1)"));
  EXPECT_THAT(ValidateText("r0: F0c0 SEND_F0c0>0 B0c0 W0c0\n", 1, 1),
              HasSubstr("has peer 0; expected another rank"));
}

TEST(ValidateScheduleTest, CatchesAStagePlacedTwice) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_INTERLEAVED_1F1B, 2, 2, 2);
  ASSERT_TRUE(s.ok());
  s->placement[1][1] = 2;  // virtual stage 2 on two ranks, stage 3 on none
  EXPECT_THAT(Msg(ValidateSchedule(*s)),
              HasSubstr("virtual stage 2 is placed on both rank 0 chunk 1 and rank 1 chunk 1"));
  s->placement[1][1] = 3;
  s->ranks.pop_back();
  EXPECT_THAT(Msg(ValidateSchedule(*s)), HasSubstr("1 action lists for 2 stages"));
}

TEST(ValidateScheduleTest, CatchesLocalOrderOfNeighbouringStages) {
  // p = 1, v = 2: virtual stage 1 (chunk 1) must run F after stage 0 and B before it.
  EXPECT_EQ(ValidateText("r0: F0c0 F0c1 B0c1 W0c1 B0c0 W0c0\n", 1, 2), "OK");
  EXPECT_THAT(ValidateText("r0: F0c1 F0c0 B0c1 W0c1 B0c0 W0c0\n", 1, 2),
              HasSubstr("F0c0 (action 1) must come before F0c1 (action 0)"));
  EXPECT_THAT(ValidateText("r0: F0c0 F0c1 B0c0 W0c0 B0c1 W0c1\n", 1, 2),
              HasSubstr("B0c1 (action 4) must come before B0c0 (action 2)"));
}

TEST(ValidateScheduleTest, ListsAtMostTenProblems) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_1F1B, 4, 16, 1);
  ASSERT_TRUE(s.ok());
  s->ranks[2].clear();
  EXPECT_THAT(Msg(ValidateSchedule(*s)), HasSubstr("more problems"));
}

}  // namespace
}  // namespace pipetrain
