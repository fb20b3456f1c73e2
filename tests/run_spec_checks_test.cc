// What `train` and `plan` load: core/'s field checks with the norm rules of
// models/ and the placement rules of parallel/, every problem reported in one
// message; and every shipped config passes all of them.
#include "launcher/run_spec_checks.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "core/config/spec_loader.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/spec_fixture.h"
#include "tests/testing/temp_dir.h"

namespace pipetrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::Message;
using testing::Replace;

// A core problem (heads), a norm problem (β without DEEPNORM) and a placement
// problem (chunks without the interleaved schedule) in one spec.
std::string ThreeProblems() {
  std::string text = Replace(testing::kValidSpec, "  heads: 4", "  heads: 3");
  text = Replace(text, "  norm: DEEPNORM", "  norm: POST_LN\n  encoder_beta: 0.5");
  return Replace(text, "  steps: 10", "  steps: 10\n  pipeline { chunks: 2 }");
}

TEST(RunSpecChecksTest, EveryLayerReportsInOneMessage) {
  auto spec = ParseRunSpecText(ThreeProblems(), "x.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::string message = Message(CheckRunSpec(*spec, "x.pbtxt"));
  EXPECT_THAT(message, AllOf(HasSubstr("x.pbtxt: model.d_model=64 is not divisible"),
                             HasSubstr("\nx.pbtxt: model.encoder_beta=0.5 is set but"),
                             HasSubstr("\nx.pbtxt: train.pipeline.chunks=2 needs "
                                       "train.pipeline.schedule=interleaved")));
}

TEST(RunSpecChecksTest, LoadRunsEveryCheck) {
  testing::TempDir dir("run_spec_checks_test");
  const std::string path = dir / "spec.pbtxt";
  std::ofstream(path) << ThreeProblems();
  auto spec = LoadCheckedRunSpec(path, "", {});
  EXPECT_THAT(Message(spec.status()), AllOf(HasSubstr(path + ": model.d_model=64"),
                                            HasSubstr(path + ": model.encoder_beta"),
                                            HasSubstr(path + ": train.pipeline.chunks=2")));
  // --set reaches the placement rules with the user's spelling.
  spec = LoadCheckedRunSpec(path, "",
                            {"heads=4", "norm=DEEPNORM", "pipeline.schedule=interleaved",
                             "pipeline.stages=2", "microbatches=3"});
  EXPECT_THAT(Message(spec.status()),
              HasSubstr("train.microbatches=3 must be a multiple of train.pipeline.stages=2"));
  spec = LoadCheckedRunSpec(path, "",
                            {"heads=4", "norm=DEEPNORM", "pipeline.schedule=interleaved",
                             "pipeline.stages=2", "microbatches=4"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->train().pipeline().schedule(), SCHEDULE_INTERLEAVED_1F1B);
}

TEST(ShippedConfigsTest, EveryConfigLoadsAndValidates) {
  const std::filesystem::path dir = std::filesystem::path(PIPETRAIN_SOURCE_DIR) / "configs";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".pbtxt") continue;
    ++count;
    auto spec = LoadCheckedRunSpec(entry.path().string(), "", {});
    EXPECT_TRUE(spec.ok()) << entry.path() << ": " << spec.status();
    if (!spec.ok()) continue;
    // Every config is documented by a leading comment block.
    std::ifstream in(entry.path());
    std::string first_line;
    std::getline(in, first_line);
    EXPECT_EQ(first_line.rfind("# ", 0), 0u) << entry.path() << " has no leading comment";
    // The resolved text reloads to the same spec.
    auto again = ParseRunSpecText(ResolvedSpecText(*spec), "resolved");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*spec, *again));
  }
  EXPECT_GE(count, 4);
}

TEST(ShippedConfigsTest, FlagshipShapes) {
  const std::string dir = std::string(PIPETRAIN_SOURCE_DIR) + "/configs/";
  auto deepnet = LoadCheckedRunSpec(dir + "deepnet_1000L.pbtxt", "", {});
  ASSERT_TRUE(deepnet.ok()) << deepnet.status();
  EXPECT_EQ(deepnet->model().encoder_layers(), 500);
  EXPECT_EQ(deepnet->model().decoder_layers(), 500);
  EXPECT_EQ(deepnet->model().d_model(), 512);
  auto m2m = LoadCheckedRunSpec(dir + "m2m_200L.pbtxt", "", {});
  ASSERT_TRUE(m2m.ok()) << m2m.status();
  EXPECT_EQ(m2m->model().encoder_layers(), 100);
  EXPECT_EQ(m2m->model().d_model(), 1024);
  EXPECT_EQ(m2m->model().heads(), 16);
}

}  // namespace
}  // namespace pipetrain
