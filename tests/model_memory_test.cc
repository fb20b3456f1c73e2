// The model's memory need is estimated before anything is allocated (issue
// 13 §7): a spec whose model cannot fit is refused with "needs X GiB", the
// rank and what to change, instead of aborting in the allocator. No test here
// allocates the model it refuses: the binary runs under `ulimit -v`, so even
// a build without the check fails fast instead of swapping the machine.
#include "launcher/model_memory.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launcher/plan_memory.h"
#include "launcher/run_spec_checks.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/spec_fixture.h"
#include "tests/testing/temp_dir.h"

namespace pipetrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// PIPETRAIN_HOST_MEMORY_GIB for one test, restored after it.
class HostMemoryLimit {
 public:
  explicit HostMemoryLimit(const char* gib) {
    if (const char* old = std::getenv(kName)) old_ = old;
    setenv(kName, gib, 1);
  }
  ~HostMemoryLimit() {
    if (old_.empty()) {
      unsetenv(kName);
    } else {
      setenv(kName, old_.c_str(), 1);
    }
  }

 private:
  static constexpr const char* kName = "PIPETRAIN_HOST_MEMORY_GIB";
  std::string old_;
};

RunSpec Spec(const std::vector<std::string>& overrides) {
  auto spec = ParseRunSpecText(testing::kValidSpec, "x.pbtxt");
  EXPECT_TRUE(spec.ok()) << spec.status();
  for (const std::string& o : overrides) EXPECT_TRUE(ApplyOverride(&*spec, o).ok()) << o;
  EXPECT_TRUE(CheckRunSpec(*spec, "x.pbtxt").ok()) << CheckRunSpec(*spec, "x.pbtxt");
  ApplyDefaults(&*spec);
  return *spec;
}

TEST(ModelMemoryTest, CountsWhatPlanCountsPerBuffer) {
  const RunSpec spec = Spec({});
  auto whole = CountStageParameters(spec.model(), 0, 4);
  ASSERT_TRUE(whole.ok()) << whole.status();
  auto training = HeaviestRankMemory(spec, ModelUse::kTraining);
  ASSERT_TRUE(training.ok()) << training.status();
  EXPECT_EQ(training->parameters, whole->total);
  // f32 weights, gradients, two AdamW moments; one partial embedding
  // gradient per use (source, target, tied output).
  EXPECT_EQ(training->bytes, 16 * whole->total + 4 * whole->embedding * whole->embedding_uses);
  auto inference = HeaviestRankMemory(spec, ModelUse::kInference);
  ASSERT_TRUE(inference.ok()) << inference.status();
  EXPECT_EQ(inference->bytes, 8 * whole->total + 4 * whole->embedding * whole->embedding_uses);
}

TEST(ModelMemoryTest, TheHeaviestPipelineRankIsTheOneChecked) {
  const RunSpec spec = Spec({"pipeline.stages=2", "encoder_layers=3", "decoder_layers=1"});
  // Uniform: rank 0 holds encoder layers 0-1 and the embedding, rank 1
  // encoder layer 2, the decoder layer (with cross-attention) and the head.
  auto rank0 = CountStageParameters(spec.model(), 0, 2);
  auto rank1 = CountStageParameters(spec.model(), 2, 4);
  ASSERT_TRUE(rank0.ok() && rank1.ok());
  auto need = HeaviestRankMemory(spec, ModelUse::kTraining);
  ASSERT_TRUE(need.ok()) << need.status();
  const int64_t bytes0 = 16 * rank0->total + 4 * rank0->embedding * rank0->embedding_uses;
  const int64_t bytes1 = 16 * rank1->total + 4 * rank1->embedding * rank1->embedding_uses;
  EXPECT_EQ(need->bytes, std::max(bytes0, bytes1));
  EXPECT_EQ(need->rank, bytes1 > bytes0 ? 1 : 0);
}

TEST(ModelMemoryTest, TooLargeSaysHowManyGiBOfWhatOnWhichRank) {
  // About 0.9 billion parameters: 14 GiB to train, never allocated here.
  const RunSpec spec = Spec({"vocab_size=32000", "d_model=4096", "ffn_dim=16384", "heads=16"});
  HostMemoryLimit limit("1");
  const absl::Status s = CheckModelFitsHostMemory(spec, ModelUse::kTraining);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("the model needs 1"),
                    HasSubstr(" GiB of host memory on pipeline "
                              "rank 0 (layers 0-3, "),
                    HasSubstr(" parameters: f32 weights, gradients and AdamW moments), but 1.0 "
                              "GiB are available (PIPETRAIN_HOST_MEMORY_GIB)"),
                    HasSubstr("lower model.vocab_size, model.d_model, model.ffn_dim or the layer "
                              "counts, or spread the layers over more pipeline stages "
                              "(train.pipeline.stages), or raise PIPETRAIN_HOST_MEMORY_GIB")));
  const absl::Status inference =
      CheckModelFitsHostMemory(spec, ModelUse::kInference, "the model of runs/x/step_9");
  EXPECT_THAT(std::string(inference.message()),
              AllOf(HasSubstr("the model of runs/x/step_9 needs "),
                    HasSubstr("GiB of host memory (all 4 layers, "),
                    HasSubstr("f32 weights, gradients), but")));
}

TEST(ModelMemoryTest, AModelThatFitsPasses) {
  HostMemoryLimit limit("1");
  EXPECT_TRUE(CheckModelFitsHostMemory(Spec({}), ModelUse::kTraining).ok());
}

TEST(ModelMemoryTest, ABadLimitIsNamed) {
  HostMemoryLimit limit("lots");
  EXPECT_THAT(std::string(CheckModelFitsHostMemory(Spec({}), ModelUse::kTraining).message()),
              HasSubstr("PIPETRAIN_HOST_MEMORY_GIB='lots' is not a number of GiB > 0"));
}

TEST(ModelMemoryTest, TheMachineItselfIsReadWithoutALimit) {
  auto host = AvailableHostMemory();
  ASSERT_TRUE(host.ok()) << host.status();
  if (!host->has_value()) GTEST_SKIP() << "no /proc/meminfo here";
  EXPECT_GT((*host)->bytes, 0);
}

// `pipetrain train` refuses before the trainer allocates: under a 4 GiB
// address-space limit a build that tried would fail in the allocator
// instead (exit 134), not with this message.
TEST(ModelMemoryTest, TrainRefusesAModelLargerThanTheHost) {
  const auto r = testing::RunCommand(absl::StrCat(
      "ulimit -v 4194304; PIPETRAIN_HOST_MEMORY_GIB=64 timeout 120 ", PIPETRAIN_BINARY,
      " train --spec configs/tiny.pbtxt --steps 1 --set d_model=16384 --set ffn_dim=65536 "
      "--set vocab_size=1000000 --set output_dir=/nonexistent/never 2>&1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("the model needs "),
                              HasSubstr(" GiB of host memory on pipeline rank "
                                        "0 (layers 0-3, "),
                              HasSubstr("but 64.0 GiB are available (PIPETRAIN_HOST_MEMORY_GIB)")));
}

// `translate` and `eval` load a checkpoint's model through
// LoadInferenceModel, which checks before it builds the model.
TEST(ModelMemoryTest, TranslateRefusesACheckpointLargerThanTheHost) {
  testing::TempDir dir("model_memory_test");
  const auto trained = testing::RunPipetrain(absl::StrCat(
      "train --spec configs/tiny.pbtxt --steps 1 --set checkpoint_interval=1 --set output_dir=",
      dir / "run"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const auto r = testing::RunCommand(absl::StrCat("PIPETRAIN_HOST_MEMORY_GIB=0.0001 timeout 120 ",
                                                  PIPETRAIN_BINARY, " translate --ckpt ",
                                                  dir / "run", " < /dev/null 2>&1"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, AllOf(HasSubstr("the model of "), HasSubstr("step_1 needs 0.00"),
                              HasSubstr(" GiB of host memory (all 4 layers, "),
                              HasSubstr("f32 weights, gradients), but 0.0001 GiB are available "
                                        "(PIPETRAIN_HOST_MEMORY_GIB)")));
}

}  // namespace
}  // namespace pipetrain
