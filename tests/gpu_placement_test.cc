// FindSharedGpus and the placement encoding used by CreateDeviceCommunicator.
#include "parallel/gpu_placement.h"

#include "gtest/gtest.h"

namespace pipetrain {
namespace {

using Groups = std::vector<std::vector<int>>;

// Fast tests link GoogleTest without gMock: substring checks by hand.
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << part << "\" not in \"" << text << "\"";
}

TEST(FindSharedGpus, OneGpuPerRankSharesNothing) {
  EXPECT_EQ(FindSharedGpus({{"a", "GPU-0"}, {"a", "GPU-1"}, {"b", "GPU-0"}}), Groups{});
  EXPECT_EQ(FindSharedGpus({}), Groups{});
  EXPECT_EQ(FindSharedGpus({{"a", "GPU-0"}}), Groups{});
}

TEST(FindSharedGpus, SameIdOnAnotherHostIsAnotherGpu) {
  // PCI bus ids repeat across nodes: only (host, gpu) identifies a GPU.
  EXPECT_EQ(FindSharedGpus({{"node1", "0000:1b:00.0"}, {"node2", "0000:1b:00.0"}}), Groups{});
}

TEST(FindSharedGpus, GroupsRanksByGpuOrderedByFirstRank) {
  const std::vector<GpuPlacement> placements = {
      {"b", "G1"}, {"a", "G0"}, {"b", "G1"}, {"a", "G0"}, {"a", "G2"}, {"a", "G0"}};
  EXPECT_EQ(FindSharedGpus(placements), (Groups{{0, 2}, {1, 3, 5}}));
}

TEST(FindSharedGpus, AllRanksOnOneGpu) {
  EXPECT_EQ(FindSharedGpus({{"h", "G"}, {"h", "G"}, {"h", "G"}, {"h", "G"}}),
              (Groups{{0, 1, 2, 3}}));
}

TEST(SharedGpuWarning, NamesRanksGpuHostAndFallback) {
  const std::vector<GpuPlacement> placements = {{"h", "GPU-abc"}, {"h", "GPU-abc"}};
  const std::string warning = SharedGpuWarning(placements, FindSharedGpus(placements));
  EXPECT_TRUE(Contains(warning, "ranks 0, 1 share GPU GPU-abc on h"));
  EXPECT_TRUE(Contains(warning, "MPI"));
  EXPECT_TRUE(Contains(warning, "warning"));
}

TEST(PlacementCode, RoundTrips) {
  const GpuPlacement in{"node-07.cluster", "GPU-8f2c1e4a-0000-1111-2222-333344445555"};
  absl::StatusOr<Tensor> code = EncodePlacement(in);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(code->numel(), kPlacementCodeLength);
  absl::StatusOr<GpuPlacement> out = DecodePlacement(*code);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->host, in.host);
  EXPECT_EQ(out->gpu, in.gpu);
}

TEST(PlacementCode, EmptyFieldsRoundTrip) {
  absl::StatusOr<Tensor> code = EncodePlacement({"", ""});
  ASSERT_TRUE(code.ok());
  absl::StatusOr<GpuPlacement> out = DecodePlacement(*code);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->host, "");
  EXPECT_EQ(out->gpu, "");
}

TEST(PlacementCode, RejectsWhatDoesNotFit) {
  EXPECT_FALSE(EncodePlacement({std::string(600, 'x'), "g"}).ok());
  EXPECT_FALSE(EncodePlacement({std::string("a\0b", 3), "g"}).ok());
  EXPECT_FALSE(DecodePlacement(Tensor::FromInts({1, 2, 3}, {3})).ok());
}

}  // namespace
}  // namespace pipetrain
