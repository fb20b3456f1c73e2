// Every size of a spec is bounded before use (issue 13 §7): a value above
// its limit (core/config/spec_bounds.h) is refused with the field's name,
// the limit and what to do, and sums of fields cannot overflow on the way
// (synthetic.max_length = 2^31 − 1 used to wrap "+ 2" negative, pass, and
// crash the run). The binary tests run under `ulimit -v`, so a build that
// let a huge size through would fail in the allocator, not swap the machine.
#include "core/config/spec_bounds.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launcher/run_spec_checks.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/spec_fixture.h"
#include "tests/testing/temp_dir.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;
using testing::Message;

// kValidSpec with the `--set` assignments applied, checked as train checks it.
std::string Problems(const std::vector<std::string>& overrides) {
  auto spec = ParseRunSpecText(testing::kValidSpec, "x.pbtxt");
  EXPECT_TRUE(spec.ok()) << spec.status();
  for (const std::string& o : overrides) {
    const absl::Status set = ApplyOverride(&*spec, o);
    if (!set.ok()) return Message(set);
  }
  return Message(CheckRunSpec(*spec, "x.pbtxt"));
}

constexpr char kIntMax[] = "2147483647";

TEST(SpecBoundsTest, ModelSizesAboveTheirLimitNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"vocab_size=16777217",
       "x.pbtxt: model.vocab_size=16777217 is above the limit of 16777216; use a smaller "
       "vocabulary"},
      {"d_model=131072", "model.d_model=131072 is above the limit of 65536; lower d_model"},
      {"ffn_dim=2147483647", "model.ffn_dim=2147483647 is above the limit of 262144"},
      {"encoder_layers=65537", "model.encoder_layers=65537 is above the limit of 65536"},
      {"decoder_layers=2147483647", "model.decoder_layers=2147483647 is above the limit of 65536"},
      {"max_positions=2147483647", "model.max_positions=2147483647 is above the limit of 1048576"},
      {"layer_norm_eps=2", "model.layer_norm_eps=2 must be in (0, 1]"},
      {"encoder_alpha=1e30", "model.encoder_alpha=1e+30 must be a finite number > 0 and <= 1000"},
  };
  for (const auto& [set, why] : cases) EXPECT_THAT(Problems({set}), HasSubstr(why)) << set;
  // At the limits the field checks pass (the memory check is separate).
  EXPECT_EQ(Problems({"vocab_size=16777216", "d_model=65536", "ffn_dim=262144", "heads=64",
                      "max_positions=1048576", "encoder_layers=65536", "decoder_layers=65536"}),
            "");
}

TEST(SpecBoundsTest, SumsOfFieldsDoNotOverflow) {
  // max_length + 2 wrapped to INT_MIN + 1 and passed.
  EXPECT_THAT(Problems({absl::StrCat("synthetic.max_length=", kIntMax)}),
              HasSubstr("model.max_positions=1024 is shorter than "
                        "train.synthetic.max_length=2147483647 + 2 (<s> and </s>); raise "
                        "max_positions or lower max_length"));
  EXPECT_THAT(Problems({"corpus.dir=c", absl::StrCat("corpus.max_length=", kIntMax)}),
              HasSubstr("train.corpus.max_length=2147483647 + 2 (<s>, </s>) exceeds "
                        "model.max_positions=1024"));
  EXPECT_THAT(Problems({"kind=DECODER_ONLY", "encoder_layers=0", "corpus.dir=c",
                        absl::StrCat("corpus.max_length=", kIntMax)}),
              HasSubstr("2 x 2147483647 + 1 exceeds model.max_positions=1024"));
  // The corpus default max_positions − 2 at INT_MIN.
  EXPECT_THAT(Problems({"corpus.dir=c", "max_positions=-2147483648"}),
              HasSubstr("model.max_positions=-2147483648 must be > 0"));
  // stages × chunks and stages × data_parallel.
  EXPECT_THAT(Problems({"pipeline.stages=65536", "data_parallel=65536"}),
              HasSubstr("train.pipeline.stages=65536 x train.data_parallel=65536 = 4294967296 "
                        "ranks is above the limit of 1048576"));
  EXPECT_THAT(Problems({"pipeline.schedule=interleaved", "pipeline.stages=65536",
                        "pipeline.chunks=65536", "microbatches=65536"}),
              HasSubstr("train.pipeline.chunks=65536 is above the limit of 1024"));
  EXPECT_THAT(Problems({"pipeline.schedule=interleaved", "pipeline.stages=65536",
                        "pipeline.chunks=1024", "microbatches=65536"}),
              HasSubstr("train.pipeline.stages=65536 x chunks=1024 virtual stages exceed the 4 "
                        "layers"));
  EXPECT_THAT(Problems({"pipeline.stages=128", "microbatches=65536", "encoder_layers=64",
                        "decoder_layers=64"}),
              HasSubstr("train.pipeline.stages=128 x chunks=1 x train.microbatches=65536 = "
                        "8388608 schedule slots is above the limit of 4194304"));
  EXPECT_THAT(Problems({"microbatches=65536", "data_parallel=65536"}),
              HasSubstr("train.microbatches=65536 x train.data_parallel=65536 = 4294967296 "
                        "micro-batches per step is above the limit of 16777216"));
}

TEST(SpecBoundsTest, TrainSizesAboveTheirLimitNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"steps=9223372036854775807",
       "train.steps=9223372036854775807 is above the limit of 1000000000000; run fewer steps"},
      {"tokens_per_batch=2147483647",
       "train.tokens_per_batch=2147483647 is above the limit of "
       "67108864"},
      {"microbatches=2147483647", "train.microbatches=2147483647 is above the limit of 65536"},
      {"keep_checkpoints=2147483647", "train.keep_checkpoints=2147483647 is above the limit"},
      {"pipeline.stages=2147483647",
       "train.pipeline.stages=2147483647 is above the limit of "
       "65536"},
      {"data_parallel=2147483647", "train.data_parallel=2147483647 is above the limit of 65536"},
      {"pipeline.recompute_every=-1", "train.pipeline.recompute_every=-1 must be >= 0"},
  };
  for (const auto& [set, why] : cases) EXPECT_THAT(Problems({set}), HasSubstr(why)) << set;
}

// --set refuses inf and nan itself; a spec file can still write them.
TEST(SpecBoundsTest, InfiniteFloatsInAFileNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  adamw { epsilon: inf }", "train.adamw.epsilon=inf must be > 0 and finite"},
      {"  adamw { weight_decay: inf }", "train.adamw.weight_decay=inf must be >= 0 and finite"},
      {"  clip_norm: inf", "train.clip_norm=inf must be >= 0 and finite"},
      {"  corpus { dir: \"c\" temperature: inf }",
       "train.corpus.temperature=inf must be a "
       "finite number >= 0.05"},
      {"  corpus { dir: \"c\" } validation { length_penalty: inf }",
       "train.validation.length_penalty=inf must be in [0, 100]"},
  };
  for (const auto& [line, why] : cases) {
    EXPECT_THAT(
        Message(testing::CheckEditedSpec("  steps: 10", "  steps: 10\n" + line, RunSpecChecks())),
        HasSubstr(why))
        << line;
  }
  EXPECT_THAT(Message(testing::CheckEditedSpec("  heads: 4", "  heads: 4\n  layer_norm_eps: inf",
                                               RunSpecChecks())),
              HasSubstr("model.layer_norm_eps=inf must be in (0, 1]"));
}

TEST(SpecBoundsTest, CorpusAndValidationSizesAboveTheirLimitNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"corpus.temperature=1e-30",
       "train.corpus.temperature=1e-30 must be a finite number >= "
       "0.05"},
      {"corpus.vocab_sentences=2147483647",
       "train.corpus.vocab_sentences=2147483647 is above "
       "the limit of 10000000"},
      {"validation.sentences=2147483647",
       "train.validation.sentences=2147483647 is above the "
       "limit of 1048576"},
      {"validation.loss_sentences=2147483647",
       "train.validation.loss_sentences=2147483647 is "
       "above the limit"},
      {"validation.beam_size=100000",
       "train.validation.beam_size=100000 is above the limit of "
       "256"},
      {"validation.length_penalty=101", "train.validation.length_penalty=101 must be in [0, 100]"},
      {"validation.sample_per_group=-1", "train.validation.sample_per_group=-1 must be >= 0"},
      {"validation.sample_per_group=2147483647",
       "train.validation.sample_per_group=2147483647 "
       "is above the limit of 65536"},
  };
  for (const auto& [set, why] : cases) {
    EXPECT_THAT(Problems({"corpus.dir=c", set}), HasSubstr(why)) << set;
  }
}

TEST(SpecBoundsTest, NormFieldsAboveTheirLimitNameTheField) {
  EXPECT_THAT(Problems({"norm=BRANCHNORM", "branch_norm.max_norm_step=9223372036854775807"}),
              HasSubstr("model.branch_norm.max_norm_step=9223372036854775807 is above the limit "
                        "of 1000000000000"));
  std::string text = testing::kValidSpec;
  std::string overrides;
  for (int i = 0; i < 1025; ++i) {
    absl::StrAppend(&overrides, "  norm_override { first_layer: 0 last_layer: 0 norm: PRE_LN }\n");
  }
  text = testing::Replace(text, "  norm: DEEPNORM\n", "  norm: DEEPNORM\n" + overrides);
  auto spec = ParseRunSpecText(text, "x.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::string message = Message(CheckRunSpec(*spec, "x.pbtxt"));
  EXPECT_THAT(message, HasSubstr("model.norm_override has 1025 entries, above the limit of 1024; "
                                 "merge adjacent ranges with the same norm"));
}

// docs/spec-reference.md's "Bounds" table states every limit as the code has it.
TEST(SpecBoundsTest, TheReferenceListsEveryBound) {
  const std::string doc =
      testing::ReadAll(std::string(PIPETRAIN_SOURCE_DIR) + "/docs/spec-reference.md");
  const size_t at = doc.find("## Bounds");
  ASSERT_NE(at, std::string::npos) << "docs/spec-reference.md has no Bounds section";
  const std::string bounds = doc.substr(at, doc.find("\n## ", at + 1) - at);
  namespace b = spec_bounds;
  for (int64_t limit : {b::kMaxVocabSize,
                        b::kMaxDModel,
                        b::kMaxFfnDim,
                        b::kMaxLayersPerStack,
                        b::kMaxPositions,
                        b::kMaxNormOverrides,
                        b::kMaxSteps,
                        b::kMaxTokensPerBatch,
                        b::kMaxMicrobatches,
                        b::kMaxStepMicrobatches,
                        b::kMaxKeepCheckpoints,
                        b::kMaxVocabSentences,
                        b::kMaxValidationSentences,
                        b::kMaxBeamSize,
                        b::kMaxSamplePerGroup,
                        b::kMaxStages,
                        b::kMaxChunks,
                        b::kMaxDataParallel,
                        b::kMaxWorldSize,
                        b::kMaxScheduleSlots}) {
    EXPECT_THAT(bounds, HasSubstr(absl::StrCat(" ", limit))) << limit;
  }
  for (double limit :
       {b::kMaxNormConstant, b::kMaxLayerNormEps, b::kMinCorpusTemperature, b::kMaxLengthPenalty}) {
    EXPECT_THAT(bounds, HasSubstr(absl::StrCat(limit))) << limit;
  }
}

// Through the binary, as a user meets it: exit 1 with the field named, no
// crash (exit 134/139) and no allocation attempt.
TEST(SpecBoundsTest, TrainRefusesHostileSizesByName) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--set synthetic.max_length=2147483647",
       "train.synthetic.max_length=2147483647 + 2 (<s> and </s>)"},
      {"--set vocab_size=2147483647", "model.vocab_size=2147483647 is above the limit"},
      {"--set d_model=2147483644", "model.d_model=2147483644 is above the limit"},
      {"--set ffn_dim=2147483647", "model.ffn_dim=2147483647 is above the limit"},
  };
  for (const auto& [set, why] : cases) {
    const auto r =
        testing::RunCommand(absl::StrCat("ulimit -v 4194304; timeout 120 ", PIPETRAIN_BINARY,
                                         " train --spec configs/tiny.pbtxt --steps 1 --set "
                                         "output_dir=/nonexistent/never ",
                                         set, " 2>&1"));
    EXPECT_EQ(r.exit_code, 1) << set << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(why)) << set;
  }
}

}  // namespace
}  // namespace pipetrain
