// A 100+100-layer DeepNorm model trains 50 steps without diverging.
#include <cmath>

#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

TEST(DeepModelLongTest, DeepNorm100Plus100TrainsFiftySteps) {
  const auto r = testing::RunPipetrain("train --spec configs/deep100.pbtxt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto loss = testing::StepValues(r.output, "loss");
  const auto gnorm = testing::StepValues(r.output, "gnorm");
  ASSERT_EQ(loss.size(), 50u) << r.output;
  for (size_t i = 0; i < loss.size(); ++i) {
    ASSERT_TRUE(std::isfinite(loss[i])) << "step " << i + 1;
    ASSERT_TRUE(std::isfinite(gnorm[i])) << "step " << i + 1;
  }
  // No divergence: the loss ends well below where it started and never blew up.
  EXPECT_LT(loss.back(), 0.8 * loss.front()) << r.output;
  for (double l : loss) EXPECT_LT(l, 1.5 * loss.front());
}

}  // namespace
}  // namespace pipetrain
