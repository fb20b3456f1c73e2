// A run never restarts silently over the checkpoints it finds: without a
// usable `latest` it resumes from the newest whole step directory and says
// so, and with none whole it refuses and changes nothing.
#include "launcher/trainer/resume_point.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/run_binary.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::CheckedFinalDigest;
using ::testing::HasSubstr;
using testing::RunPipetrain;

class ResumePointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/resume_point_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
  }
  // Trains the tiny model to `steps`, a checkpoint every 2 steps, in dir_.
  testing::RunResult Train(int steps) {
    return RunPipetrain(
        "train --spec configs/tiny.pbtxt --steps " + std::to_string(steps) +
        " --set checkpoint_interval=2 --set keep_checkpoints=10 --set output_dir=" + dir_);
  }
  std::string Step(int n) const { return dir_ + "/step_" + std::to_string(n); }
  // Flips one bit in the middle of a step directory's first data file.
  void Damage(int n) const {
    for (const fs::directory_entry& e : fs::directory_iterator(Step(n))) {
      if (e.path().extension() != ".bin") continue;
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      const auto middle = static_cast<std::streamoff>(fs::file_size(e.path()) / 2);
      f.seekg(middle);
      char c = 0;
      f.get(c);
      f.seekp(middle);
      f.put(static_cast<char>(c ^ 0x10));
      return;
    }
    FAIL() << "no data file in " << Step(n);
  }
  std::string dir_;
};

TEST_F(ResumePointTest, AFreshDirectoryHasNothingToResume) {
  auto point = FindResumePoint(dir_);
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_FALSE(point->reader.has_value());
  EXPECT_EQ(point->note, "");
}

TEST_F(ResumePointTest, LatestIsTakenWhenItNamesTheNewestStep) {
  ASSERT_EQ(Train(4).exit_code, 0);
  auto point = FindResumePoint(dir_);
  ASSERT_TRUE(point.ok()) << point.status();
  ASSERT_TRUE(point->reader.has_value());
  EXPECT_EQ(point->reader->step(), 4);
  EXPECT_EQ(point->note, "");
}

// The case: with `latest` deleted, the run started from step 0 and
// overwrote step_2 and step_4. Now it resumes from step_4, says so, and ends
// where a straight run ends.
TEST_F(ResumePointTest, MissingLatestResumesFromTheNewestStepAndSaysSo) {
  const auto straight = RunPipetrain("train --spec configs/tiny.pbtxt --steps 6");
  ASSERT_EQ(Train(4).exit_code, 0);
  fs::remove(dir_ + "/latest");
  const auto resumed = Train(6);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resuming from " + Step(4)));
  EXPECT_THAT(resumed.output, HasSubstr("latest is missing"));
  EXPECT_THAT(resumed.output, HasSubstr("resumed from " + Step(4) + " (step 4)"));
  EXPECT_EQ(CheckedFinalDigest(resumed.output), CheckedFinalDigest(straight.output));
}

TEST_F(ResumePointTest, LatestNamingAnOlderStepIsPassedOverForTheNewestWholeOne) {
  ASSERT_EQ(Train(4).exit_code, 0);
  std::ofstream(dir_ + "/latest", std::ios::trunc) << "step_2\n";
  auto point = FindResumePoint(dir_);
  ASSERT_TRUE(point.ok()) << point.status();
  ASSERT_TRUE(point->reader.has_value());
  EXPECT_EQ(point->reader->step(), 4);
  EXPECT_THAT(point->note, HasSubstr("names step_2 but step_4 is newer"));
}

TEST_F(ResumePointTest, ADamagedNewestStepFallsBackToTheNextWholeOne) {
  ASSERT_EQ(Train(4).exit_code, 0);
  Damage(4);
  fs::remove(dir_ + "/latest");
  auto point = FindResumePoint(dir_);
  ASSERT_TRUE(point.ok()) << point.status();
  ASSERT_TRUE(point->reader.has_value());
  EXPECT_EQ(point->reader->step(), 2);
  EXPECT_THAT(point->note, HasSubstr("passed over"));
  EXPECT_THAT(point->note, HasSubstr("step_4: "));
}

TEST_F(ResumePointTest, NoWholeStepIsRefusedAndNothingIsOverwritten) {
  ASSERT_EQ(Train(4).exit_code, 0);
  Damage(2);
  Damage(4);
  fs::remove(dir_ + "/latest");
  const auto before = fs::last_write_time(Step(4) + "/manifest.pb");
  const auto run = Train(6);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("holds checkpoints, but none can be resumed"));
  EXPECT_THAT(run.output, HasSubstr("Nothing was changed"));
  EXPECT_FALSE(fs::exists(Step(6)));
  EXPECT_TRUE(fs::exists(Step(2)));
  EXPECT_EQ(fs::last_write_time(Step(4) + "/manifest.pb"), before);
}

TEST_F(ResumePointTest, AnotherModelsCheckpointsAreNeverOverwritten) {
  ASSERT_EQ(Train(2).exit_code, 0);
  fs::remove(dir_ + "/latest");
  const auto run = RunPipetrain(
      "train --spec configs/tiny.pbtxt --steps 4 --set d_model=32 "
      "--set checkpoint_interval=2 --set output_dir=" +
      dir_);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("of a different model"));
  EXPECT_FALSE(fs::exists(Step(4)));
}

}  // namespace
}  // namespace pipetrain
