// The placement rules of parallel/placement_checks.h, run as a SpecCheck after
// core/'s field checks: stages, chunks, replicas, schedule, partition and
// recompute policies, each error naming the field, its value and the fix.
#include "parallel/placement_checks.h"

#include <string>

#include "core/config/spec_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/spec_fixture.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;
using testing::Message;

constexpr SpecCheck kPlacementChecks[] = {CheckPlacement};

// The test spec (4 layers) with `train_fields` added to its train block,
// validated with the placement rules.
absl::Status CheckTrain(const std::string& train_fields) {
  return testing::CheckEditedSpec("  steps: 10", "  steps: 10\n  " + train_fields,
                                  kPlacementChecks);
}

TEST(PlacementRulesTest, CountsInRange) {
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: -1 }")),
              HasSubstr("x.pbtxt: train.pipeline.stages=-1 must be >= 1"));
  EXPECT_THAT(Message(CheckTrain("pipeline { chunks: -2 }")),
              HasSubstr("train.pipeline.chunks=-2 must be >= 1"));
  EXPECT_THAT(Message(CheckTrain("data_parallel: -1")),
              HasSubstr("train.data_parallel=-1 must be >= 1 (0 means 1)"));
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: 3 chunks: 2 schedule: interleaved }\n"
                                 "  microbatches: 6")),
              HasSubstr("train.pipeline.stages=3 x chunks=2 virtual stages exceed the 4 layers"));
}

TEST(PlacementRulesTest, ScheduleRules) {
  EXPECT_THAT(Message(CheckTrain("pipeline { schedule: 77 }")),
              HasSubstr("x.pbtxt: train.pipeline.schedule=77 is not a schedule; use gpipe, 1f1b "
                        "or interleaved"));
  EXPECT_THAT(Message(CheckTrain("pipeline { chunks: 2 }")),
              HasSubstr("train.pipeline.chunks=2 needs train.pipeline.schedule=interleaved"));
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: 2 chunks: 2 schedule: \"gpipe\" }")),
              HasSubstr("train.pipeline.chunks=2 needs train.pipeline.schedule=interleaved"));
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: 2 schedule: interleaved }\n"
                                 "  microbatches: 3")),
              HasSubstr("train.microbatches=3 must be a multiple of train.pipeline.stages=2 for "
                        "the interleaved schedule"));
  EXPECT_TRUE(CheckTrain("pipeline { stages: 2 chunks: 2 schedule: interleaved }\n"
                         "  microbatches: 4")
                  .ok());
  // Unset is 1F1B: one chunk, any micro-batch count.
  EXPECT_TRUE(CheckTrain("pipeline { stages: 2 }\n  microbatches: 3").ok());
}

TEST(PlacementRulesTest, PartitionRules) {
  EXPECT_THAT(Message(CheckTrain("pipeline { partition: \"even\" }")),
              HasSubstr("train.pipeline.partition=\"even\" is not a partition; use uniform, "
                        "balanced or explicit"));
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: 2 partition: \"explicit\" }")),
              HasSubstr("train.pipeline.boundaries has 0 entries; partition=explicit needs "
                        "stages x chunks - 1 = 1"));
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: 2 partition: \"explicit\" boundaries: 4 }")),
              HasSubstr("train.pipeline.boundaries[0]=4 must be ascending and inside (0, 4)"));
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: 2 boundaries: 1 }")),
              HasSubstr("train.pipeline.boundaries is set but partition is uniform"));
  EXPECT_TRUE(CheckTrain("pipeline { stages: 2 partition: \"explicit\" boundaries: 1 }").ok());
}

TEST(PlacementRulesTest, RecomputeRules) {
  EXPECT_THAT(Message(CheckTrain("pipeline { recompute: \"some\" }")),
              HasSubstr("train.pipeline.recompute=\"some\" is not a policy; use none, full or "
                        "every"));
  EXPECT_THAT(Message(CheckTrain("pipeline { stages: 2 stage_recompute: \"full\" }")),
              HasSubstr("train.pipeline.stage_recompute has 1 entries; give one per virtual "
                        "stage (2)"));
  EXPECT_THAT(Message(CheckTrain("pipeline { recompute: \"every\" }")),
              HasSubstr("train.pipeline.recompute_every=0 must be >= 1 when a recompute policy "
                        "is \"every\""));
}

TEST(PlacementRulesTest, CoreAloneDoesNotKnowThem) {
  EXPECT_TRUE(
      testing::CheckEditedSpec("  steps: 10", "  steps: 10\n  pipeline { chunks: 2 }").ok());
}

}  // namespace
}  // namespace pipetrain
