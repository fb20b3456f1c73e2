// Temperature sampling over directions: the probabilities follow
// p ∝ n^(1/T) exactly, and Philox-driven draws follow the probabilities
// (a chi-square test on a fixed seed); T = 1 is proportional to size, a
// large T nearly uniform, and an empty direction is never drawn.
#include "core/data/direction_sampler.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/philox.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

// Draws `n` directions with Philox bits as the loader does and returns the
// chi-square statistic of the counts against the sampler's probabilities,
// over the directions with p > 0 (counts of p = 0 ones must be zero).
double ChiSquare(const DirectionSampler& sampler, int64_t n, uint64_t seed,
                 std::vector<int64_t>* counts) {
  const PhiloxStream stream(RngKey{.seed = seed, .layer = 5});
  counts->assign(sampler.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    ++(*counts)[sampler.Pick(UnitFromBits(stream.Bits(2 * i), stream.Bits(2 * i + 1)))];
  }
  double chi2 = 0;
  for (int64_t d = 0; d < sampler.size(); ++d) {
    const double expected = sampler.probability(d) * static_cast<double>(n);
    if (expected == 0) {
      EXPECT_EQ((*counts)[d], 0) << "direction " << d << " has no pair but was drawn";
      continue;
    }
    const double diff = static_cast<double>((*counts)[d]) - expected;
    chi2 += diff * diff / expected;
  }
  return chi2;
}

const std::vector<int64_t> kPairs = {40000, 9000, 1000, 0, 250, 30, 4, 1};

TEST(DirectionSamplerTest, ProbabilitiesFollowThePowerLaw) {
  for (double t : {1.0, 2.0, 5.0, 100.0}) {
    const auto sampler = DirectionSampler::Create(kPairs, t);
    ASSERT_TRUE(sampler.ok()) << sampler.status();
    double total = 0;
    for (int64_t n : kPairs) total += std::pow(static_cast<double>(n), 1.0 / t);
    double sum = 0;
    for (size_t d = 0; d < kPairs.size(); ++d) {
      const double expected = std::pow(static_cast<double>(kPairs[d]), 1.0 / t) / total;
      EXPECT_NEAR(sampler->probability(d), expected, 1e-12) << "T=" << t << " d=" << d;
      sum += sampler->probability(d);
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
  // T = 1: in proportion to size.
  const auto by_size = DirectionSampler::Create(kPairs, 1.0);
  EXPECT_NEAR(by_size->probability(0) / by_size->probability(2), 40.0, 1e-9);
  // Large T: nearly uniform over the non-empty directions.
  const auto flat = DirectionSampler::Create(kPairs, 1e6);
  for (size_t d = 0; d < kPairs.size(); ++d) {
    EXPECT_NEAR(flat->probability(d), kPairs[d] > 0 ? 1.0 / 7 : 0.0, 1e-4) << d;
  }
}

TEST(DirectionSamplerTest, DrawsMatchTheProbabilities) {
  // 7 directions with p > 0: 6 degrees of freedom. The 99.9% quantile of
  // chi-square(6) is 22.46; a sampler off by a few percent on any direction
  // exceeds it by far with this many draws.
  constexpr int64_t kDraws = 400000;
  for (double t : {1.0, 5.0, 1000.0}) {
    const auto sampler = DirectionSampler::Create(kPairs, t);
    ASSERT_TRUE(sampler.ok());
    std::vector<int64_t> counts;
    EXPECT_LT(ChiSquare(*sampler, kDraws, 11, &counts), 22.46) << "T=" << t;
    if (t == 1.0) {
      // The largest direction dominates; the smallest is seen ~5 times.
      EXPECT_NEAR(static_cast<double>(counts[0]) / kDraws, 40000.0 / 50285, 0.005);
    }
  }
}

TEST(DirectionSamplerTest, EdgesOfTheUnitInterval) {
  const auto sampler = DirectionSampler::Create({0, 3, 0, 5, 0}, 1.0);
  ASSERT_TRUE(sampler.ok());
  EXPECT_EQ(sampler->Pick(0.0), 1);
  EXPECT_EQ(sampler->Pick(0.375 - 1e-9), 1);
  EXPECT_EQ(sampler->Pick(0.375 + 1e-9), 3);
  EXPECT_EQ(sampler->Pick(std::nextafter(1.0, 0.0)), 3);
  EXPECT_EQ(UnitFromBits(0, 0), 0.0);
  EXPECT_LT(UnitFromBits(0xFFFFFFFFu, 0xFFFFFFFFu), 1.0);
  EXPECT_GT(UnitFromBits(0xFFFFFFFFu, 0xFFFFFFFFu), 1.0 - 1e-15);
  EXPECT_EQ(IndexFromBits(0, 7), 0);
  EXPECT_EQ(IndexFromBits(~uint64_t{0}, 7), 6);
  EXPECT_EQ(IndexFromBits(uint64_t{1} << 63, 10), 5);
}

TEST(DirectionSamplerTest, BadInputIsAnError) {
  EXPECT_FALSE(DirectionSampler::Create(kPairs, 0).ok());
  EXPECT_FALSE(DirectionSampler::Create(kPairs, -1).ok());
  EXPECT_FALSE(DirectionSampler::Create(kPairs, std::numeric_limits<double>::infinity()).ok());
  EXPECT_FALSE(DirectionSampler::Create(kPairs, std::nan("")).ok());
  EXPECT_FALSE(DirectionSampler::Create({0, 0}, 5).ok());
  EXPECT_FALSE(DirectionSampler::Create({}, 5).ok());
  EXPECT_FALSE(DirectionSampler::Create({3, -1}, 5).ok());
}

}  // namespace
}  // namespace pipetrain
