// The flagship job's CPU-sized twin, as a user runs it:
// `mpirun -np 4 pipetrain --spec configs/m2m_tiny.pbtxt` on the real
// multilingual corpus of this machine (87 languages, 7,482 directions),
// 2 pipeline stages x 2 replicas. A few steps: the data is prepared from
// /usr/share/locale, every direction is accounted for, the grouped
// validation table appears, and a run stopped and resumed on this corpus
// ends bit for bit where a straight run ends (the data cursor at scale).
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

testing::RunResult RunMpi(const std::string& args) {
  const std::string launcher = std::string("env OMPI_ALLOW_RUN_AS_ROOT=1 ") +
                               "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
                               "OMP_WAIT_POLICY=passive timeout 600 " +
                               PIPETRAIN_MPIRUN + " 4 ";
  return testing::RunCommand(launcher + PIPETRAIN_BINARY + " " + args);
}

TEST(M2mTinyLongTest, TrainsOnEveryDirectionValidatesByGroupAndResumes) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "m2m_tiny";
  std::filesystem::remove_all(dir);
  // The corpus goes to the test's own directory (not the checkout's data/);
  // a smaller vocabulary sample keeps spm_train short.
  const std::string base =
      "--spec configs/m2m_tiny.pbtxt --set corpus.dir=" + (dir / "gettext").string() +
      " --set corpus.vocab_sentences=60000 --set log_interval=1 ";
  const auto straight =
      RunMpi(base + "--steps 4 --set eval_interval=4 --set output_dir=" + (dir / "a").string());
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  // 87 languages, all 87 x 86 directions accounted for: sampled or named.
  EXPECT_THAT(straight.output, ContainsRegex("sampling 7[0-9]{3} of 7482 directions among 87 "
                                             "languages"));
  EXPECT_THAT(straight.output, HasSubstr("train pairs: "));
  EXPECT_THAT(straight.output, HasSubstr("2 stages x 1 chunks (1f1b, balanced), 2 replicas"));
  // The grouped validation table.
  EXPECT_THAT(straight.output, ContainsRegex("groups: en-x BLEU=[0-9.]+ chrF=[0-9.]+ \\(2\\) \\| "
                                             "x-en BLEU=[0-9.]+ chrF=[0-9.]+ \\(2\\) \\| x-y"));
  const std::string digest = testing::CheckedFinalDigest(straight.output);

  // Stopped after step 2 (its checkpoint), resumed to 4: the same weights.
  const std::string run = (dir / "b").string();
  const auto first = RunMpi(base + "--steps 2 --set checkpoint_interval=2 --set output_dir=" + run);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto second = RunMpi(base + "--steps 4 --set output_dir=" + run);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("resumed from"));
  EXPECT_EQ(testing::CheckedFinalDigest(second.output), digest);
}

}  // namespace
}  // namespace pipetrain
