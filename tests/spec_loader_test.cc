#include "core/config/spec_loader.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/spec_fixture.h"

namespace pipetrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using testing::kValidSpec;
using testing::Message;
using testing::Replace;

constexpr const char* kValid = kValidSpec;

// kValid with `from` replaced by `to`, parsed and validated as "x.pbtxt".
absl::Status Check(const std::string& from, const std::string& to) {
  return testing::CheckEditedSpec(from, to);
}

class TempFiles : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::filesystem::path dir =
        std::filesystem::path(::testing::TempDir()) /
        ("spec_loader_test_" +
         std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / name).string();
    std::ofstream(path) << text;
    return path;
  }
};

RunSpec ValidSpec() {
  auto spec = ParseRunSpecText(kValid, "valid.pbtxt");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

// ---------------------------------------------------------------- syntax ---

TEST(SpecParseTest, SyntaxErrorGivesOneBasedLineAndColumn) {
  // "  d_model 64": the colon is missing; the unexpected token is at column 11.
  absl::Status s = Check("  d_model: 64", "  d_model 64");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), HasSubstr("x.pbtxt:4:11: "));
  EXPECT_THAT(Message(s), HasSubstr("hint: write a scalar field as `name: value`"));
  // The offending line is quoted with a caret under the column.
  EXPECT_THAT(Message(s), HasSubstr("\n      d_model 64\n    " + std::string(10, ' ') + "^\n"));
}

TEST(SpecParseTest, UnknownFieldPointsAtTheNameAndListsValidFields) {
  absl::Status s = Check("  d_model: 64", "  d_modle: 64");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), AllOf(HasSubstr("x.pbtxt:4:3: "), HasSubstr("d_modle"),
                                HasSubstr("did you mean 'd_model'?"),
                                HasSubstr("valid fields: name, kind, vocab_size, d_model")));
}

TEST(SpecParseTest, UnknownFieldInNestedMessageNamesThatMessage) {
  absl::Status s = Check("  norm: DEEPNORM", "  norm: DEEPNORM\n  norm_override { lyer: 1 }");
  EXPECT_THAT(Message(s),
              AllOf(HasSubstr("x.pbtxt:10:19: "), HasSubstr("NormOverride has no field"),
                    HasSubstr("valid fields: stack, first_layer, last_layer, norm")));
}

TEST(SpecParseTest, UnknownTopLevelBlock) {
  auto spec = ParseRunSpecText("modle {\n}\n", "top.pbtxt");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(Message(spec.status()),
              AllOf(HasSubstr("top.pbtxt:1:1: "), HasSubstr("did you mean 'model'?"),
                    HasSubstr("valid fields: model, train")));
}

TEST(SpecParseTest, UnknownEnumValuePointsAtTheValueAndListsValues) {
  absl::Status s = Check("  norm: DEEPNORM", "  norm: DEEP_NORM");
  EXPECT_THAT(Message(s),
              AllOf(HasSubstr("x.pbtxt:9:9: "), HasSubstr("DEEP_NORM"),
                    HasSubstr("'norm' takes a ResidualNorm"), HasSubstr("did you mean 'DEEPNORM'?"),
                    HasSubstr("POST_LN, PRE_LN, DEEPNORM, BRANCHNORM")));
  // The placeholder is not offered as a value.
  EXPECT_THAT(Message(s), Not(HasSubstr("RESIDUAL_NORM_UNSPECIFIED")));
}

TEST(SpecParseTest, WrongTypeForIntegerField) {
  absl::Status s = Check("  heads: 4", "  heads: \"four\"");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("x.pbtxt:6:10: Expected integer"),
                                HasSubstr("hint: this field takes a whole number")));
  s = Check("  heads: 4", "  heads: 4.5");
  EXPECT_THAT(Message(s), HasSubstr("x.pbtxt:6:10: Expected integer"));
}

TEST(SpecParseTest, UnquotedStringGetsAQuotingHint) {
  absl::Status s = Check("  lr: 1e-3", "  lr: 1e-3\n  dtype: f64");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("x.pbtxt:13:10: Expected string"),
                                HasSubstr("double quotes, e.g. dtype: \"f32\"")));
}

TEST(SpecParseTest, BadBooleanPointsAtTheValue) {
  absl::Status s = Check("  heads: 4", "  heads: 4\n  tied_embeddings: maybe");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("x.pbtxt:7:20: "), HasSubstr("write true or false")));
}

TEST(SpecParseTest, DuplicateFieldIsReported) {
  absl::Status s = Check("  heads: 4", "  heads: 4\n  heads: 8");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("x.pbtxt:7:"), HasSubstr("specified multiple times")));
}

TEST(SpecParseTest, MissingClosingBrace) {
  auto spec = ParseRunSpecText("model {\n  d_model: 4\n", "open.pbtxt");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(Message(spec.status()),
              AllOf(HasSubstr("open.pbtxt:3:1: "), HasSubstr("a closing '}' is missing")));
}

TEST(SpecParseTest, ColumnsCountBytesNotTabStops) {
  // Protobuf expands a tab to 8 columns; editors and compilers count bytes.
  auto spec = ParseRunSpecText("model {\n\td_modle: 4\n}\n", "tab.pbtxt");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(Message(spec.status()), HasSubstr("tab.pbtxt:2:2: "));
}

TEST(SpecParseTest, IntegerOutOfRange) {
  absl::Status s = Check("  d_model: 64", "  d_model: 99999999999");
  EXPECT_THAT(Message(s), HasSubstr("x.pbtxt:4:12: Integer out of range"));
}

// -------------------------------------------------------- enum spellings ---

// kValid with a pipeline block whose schedule is written as `written`.
std::string WithSchedule(const std::string& written) {
  return Replace(kValid, "  steps: 10", "  steps: 10\n  pipeline { schedule: " + written + " }");
}

TEST(SpecParseTest, EnumTakesItsNameOrSpellingQuotedOrNotInAnyCase) {
  const std::pair<std::string, PipelineSchedule> cases[] = {
      {"SCHEDULE_1F1B", SCHEDULE_1F1B},
      {"\"1f1b\"", SCHEDULE_1F1B},
      {"1f1b", SCHEDULE_1F1B},
      {"'1F1B'", SCHEDULE_1F1B},
      {"schedule_1f1b", SCHEDULE_1F1B},
      {"2", SCHEDULE_1F1B},
      {"\"gpipe\"", SCHEDULE_GPIPE},
      {"GPipe", SCHEDULE_GPIPE},
      {"interleaved", SCHEDULE_INTERLEAVED_1F1B},
      {"SCHEDULE_INTERLEAVED_1F1B", SCHEDULE_INTERLEAVED_1F1B},
  };
  for (const auto& [written, expected] : cases) {
    auto spec = ParseRunSpecText(WithSchedule(written), "x.pbtxt");
    ASSERT_TRUE(spec.ok()) << written << ": " << spec.status();
    EXPECT_EQ(spec->train().pipeline().schedule(), expected) << written;
  }
  // Every enum, not just the schedule.
  auto spec = ParseRunSpecText(Replace(kValid, "norm: DEEPNORM", "norm: deepnorm"), "x.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model().norm(), DEEPNORM);
  // Either block syntax of text format.
  spec = ParseRunSpecText(
      Replace(kValid, "  steps: 10", "  steps: 10\n  pipeline: < schedule: \"gpipe\" >"),
      "x.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->train().pipeline().schedule(), SCHEDULE_GPIPE);
  // And a --config file the same way.
  auto config = ParseTrainConfigText("pipeline {\n  schedule: \"gpipe\"\n}\n", "c.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->pipeline().schedule(), SCHEDULE_GPIPE);
}

TEST(SpecParseTest, SpelledEnumKeepsTheColumnsAfterIt) {
  const std::string text = WithSchedule("\"1f1b\" stagez: 2");
  const std::string line = "  pipeline { schedule: \"1f1b\" stagez: 2 }";
  ASSERT_NE(text.find(line), std::string::npos);
  auto spec = ParseRunSpecText(text, "x.pbtxt");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(Message(spec.status()),
              AllOf(HasSubstr(absl::StrCat("x.pbtxt:14:", line.find("stagez") + 1, ": ")),
                    HasSubstr("did you mean 'stages'?"), HasSubstr("\n    " + line + "\n")));
}

TEST(SpecParseTest, UnknownSpelledEnumNamesTheEnumAndItsSpellings) {
  for (const char* written : {"\"zigzag\"", "zigzag"}) {
    auto spec = ParseRunSpecText(WithSchedule(written), "x.pbtxt");
    ASSERT_FALSE(spec.ok()) << written;
    EXPECT_THAT(Message(spec.status()),
                AllOf(HasSubstr("x.pbtxt:14:"),
                      HasSubstr("Unknown enumeration value of \"zigzag\" for field \"schedule\""),
                      HasSubstr("'schedule' takes a PipelineSchedule; valid values: gpipe "
                                "(SCHEDULE_GPIPE), 1f1b (SCHEDULE_1F1B), interleaved "
                                "(SCHEDULE_INTERLEAVED_1F1B)")))
        << written;
  }
  auto spec = ParseRunSpecText(WithSchedule("\"1f2b\""), "x.pbtxt");
  EXPECT_THAT(Message(spec.status()), HasSubstr("did you mean '1f1b'?"));
  // Words that are not identifiers are reported the same way.
  spec = ParseRunSpecText(WithSchedule("\"interleaved-1f1b\""), "x.pbtxt");
  EXPECT_THAT(Message(spec.status()),
              AllOf(HasSubstr("Unknown enumeration value of \"interleaved-1f1b\""),
                    HasSubstr("valid values: gpipe")));
}

TEST(SpecParseTest, SpellingsInStringsAndCommentsAreLeftAlone) {
  auto spec = ParseRunSpecText(
      Replace(kValid, "  heads: 4",
              "  heads: 4\n  name: \"1f1b\"  # schedule: 1f1b\n  # norm: deepnorm"),
      "x.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model().name(), "1f1b");
  EXPECT_EQ(spec->train().pipeline().schedule(), PIPELINE_SCHEDULE_UNSPECIFIED);
}

// ------------------------------------------------------------- semantics ---

TEST(SpecValidateTest, DModelNotDivisibleByHeads) {
  absl::Status s = Check("  heads: 4", "  heads: 3");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), HasSubstr("x.pbtxt: model.d_model=64 is not divisible by model.heads=3; "
                                    "choose d_model a multiple of heads"));
}

TEST(SpecValidateTest, ZeroSizes) {
  EXPECT_THAT(Message(Check("  d_model: 64", "  d_model: 0")),
              HasSubstr("x.pbtxt: model.d_model=0 must be > 0"));
  EXPECT_THAT(Message(Check("  ffn_dim: 128", "  ffn_dim: -1")),
              HasSubstr("model.ffn_dim=-1 must be > 0"));
  EXPECT_THAT(Message(Check("  heads: 4", "  heads: 0")), HasSubstr("model.heads=0 must be > 0"));
  EXPECT_THAT(Message(Check("  vocab_size: 32", "  vocab_size: 4")),
              HasSubstr("model.vocab_size=4 must be > 4 (ids 0..3 are"));
}

TEST(SpecValidateTest, ZeroLayersForEncoderDecoder) {
  absl::Status s = Check("  encoder_layers: 2", "  encoder_layers: 0");
  EXPECT_THAT(Message(s), HasSubstr("x.pbtxt: model.encoder_layers=0 must be > 0 for "
                                    "ENCODER_DECODER"));
}

TEST(SpecValidateTest, LayerCountsMustMatchTheKind) {
  absl::Status s = Check("ENCODER_DECODER", "DECODER_ONLY");
  EXPECT_THAT(Message(s), HasSubstr("model.encoder_layers=2 must be 0 for DECODER_ONLY"));
  s = Check("ENCODER_DECODER", "ENCODER_ONLY");
  EXPECT_THAT(Message(s), HasSubstr("model.decoder_layers=2 must be 0 for ENCODER_ONLY"));
  s = Check("  encoder_layers: 2\n  decoder_layers: 2", "  decoder_layers: 0");
  EXPECT_THAT(Message(s), HasSubstr("model.encoder_layers=0 must be > 0 for ENCODER_DECODER"));
  EXPECT_THAT(Message(s), HasSubstr("model.decoder_layers=0 must be > 0 for ENCODER_DECODER"));
}

TEST(SpecValidateTest, KindMustBeSet) {
  EXPECT_THAT(Message(Check("  kind: ENCODER_DECODER\n", "")),
              HasSubstr("x.pbtxt: model.kind=MODEL_KIND_UNSPECIFIED is not a model kind"));
}

TEST(SpecValidateTest, DropoutAndLabelSmoothingRanges) {
  EXPECT_THAT(Message(Check("  heads: 4", "  heads: 4\n  residual_dropout: 1.0")),
              HasSubstr("x.pbtxt: model.residual_dropout=1 must be in [0, 1)"));
  EXPECT_THAT(Message(Check("  heads: 4", "  heads: 4\n  label_smoothing: -0.1")),
              HasSubstr("model.label_smoothing=-0.1 must be in [0, 1)"));
  EXPECT_THAT(Message(Check("  heads: 4", "  heads: 4\n  attention_dropout: nan")),
              HasSubstr("model.attention_dropout=nan must be in [0, 1)"));
}

TEST(SpecValidateTest, TrainRanges) {
  EXPECT_THAT(Message(Check("  lr: 1e-3", "  lr: -1e-3")),
              HasSubstr("x.pbtxt: train.lr=-0.001 must be > 0 (the peak learning rate)"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 0")), HasSubstr("train.steps=0 must be > 0"));
  EXPECT_THAT(Message(Check("  tokens_per_batch: 512", "  tokens_per_batch: 0")),
              HasSubstr("train.tokens_per_batch=0 must be > 0"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  microbatches: -2")),
              HasSubstr("train.microbatches=-2 must be >= 1"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  adamw { beta2: 1.0 }")),
              HasSubstr("train.adamw.beta2=1 must be in [0, 1)"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  adamw { epsilon: -1 }")),
              HasSubstr("train.adamw.epsilon=-1 must be > 0"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  adamw { weight_decay: -0.1 }")),
              HasSubstr("train.adamw.weight_decay=-0.1 must be >= 0"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  clip_norm: -1")),
              HasSubstr("train.clip_norm=-1 must be >= 0"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  warmup_steps: -5")),
              HasSubstr("train.warmup_steps=-5 must be >= 0"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  min_lr: 0.01")),
              HasSubstr("train.min_lr=0.01 must be in [0, train.lr=0.001]"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  dtype: \"fp16\"")),
              HasSubstr("train.dtype=\"fp16\" is not \"f32\", \"f64\" or \"bf16\""));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  dtype: \"bf16\"")),
              HasSubstr("train.dtype=\"bf16\" needs train.device=\"cuda\""));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  eval_interval: -1")),
              HasSubstr("train.eval_interval=-1 must be >= 0"));
}

TEST(SpecValidateTest, SyntheticDataRanges) {
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  synthetic { min_length: 20 }")),
              HasSubstr("train.synthetic.min_length=20 is above max_length=12 (0 means 12)"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  synthetic { min_length: -1 }")),
              HasSubstr("train.synthetic.min_length=-1 must be >= 1"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  synthetic { alphabet: 29 }")),
              HasSubstr("train.synthetic.alphabet=29 must be in [0, model.vocab_size - 4 = 28]"));
  EXPECT_TRUE(Check("  steps: 10", "  steps: 10\n  synthetic { alphabet: 28 }").ok());
  EXPECT_THAT(Message(Check("  heads: 4", "  heads: 4\n  max_positions: 13")),
              HasSubstr("model.max_positions=13 is shorter than train.synthetic.max_length=12 + "
                        "2"));
  EXPECT_TRUE(Check("  heads: 4", "  heads: 4\n  max_positions: 14").ok());
  // A decoder-only model reads source, <s> and target as one sequence.
  const std::string stacks =
      "kind: ENCODER_DECODER\n  vocab_size: 32\n  d_model: 64\n"
      "  ffn_dim: 128\n  heads: 4\n  encoder_layers: 2";
  auto decoder_only = [&](int positions) {
    return Check(stacks, absl::StrCat("kind: DECODER_ONLY\n  vocab_size: 32\n  d_model: 64\n"
                                      "  ffn_dim: 128\n  heads: 4\n  max_positions: ",
                                      positions, "\n  encoder_layers: 0"));
  };
  EXPECT_THAT(Message(decoder_only(24)),
              HasSubstr("model.max_positions=24 is shorter than a decoder-only model's synthetic "
                        "sequence: source, <s> and target, 2 x train.synthetic.max_length=12 + 1"));
  EXPECT_TRUE(decoder_only(25).ok()) << decoder_only(25);
}

TEST(SpecValidateTest, CorpusAndValidationRanges) {
  const std::string corpus = "  steps: 10\n  corpus { dir: \"data/c\" ";
  EXPECT_TRUE(Check("  steps: 10", corpus + "languages: [\"en\", \"pt_BR\"] }\n"
                                            "  validation { directions: \"en-pt_BR\" }")
                  .ok());
  EXPECT_THAT(Message(Check("  steps: 10", corpus + "temperature: -1 }")),
              HasSubstr("train.corpus.temperature=-1 must be a finite number >= 0.05"));
  EXPECT_THAT(Message(Check("  steps: 10", corpus + "max_length: 1023 }")),
              HasSubstr("train.corpus.max_length=1023 + 2 (<s>, </s>) exceeds "
                        "model.max_positions=1024"));
  EXPECT_THAT(Message(Check("  steps: 10", corpus + "languages: [\"en\", \"en\"] }")),
              HasSubstr("'en' is listed twice"));
  EXPECT_THAT(Message(Check("  steps: 10", corpus + "languages: \"en\" }")),
              HasSubstr("lists one language"));
  EXPECT_THAT(Message(Check("  steps: 10", corpus + "languages: [\"en\", \"de\"] }\n"
                                                    "  validation { directions: \"en-fr\" }")),
              HasSubstr("'en-fr' uses a language not in train.corpus.languages"));
  EXPECT_THAT(Message(Check("  steps: 10", corpus + "}\n  validation { directions: \"en_de\" }")),
              HasSubstr("'en_de' is not a direction; write \"src-tgt\""));
  EXPECT_THAT(Message(Check("  steps: 10", corpus + "}\n  validation { beam_size: -2 }")),
              HasSubstr("train.validation.beam_size=-2 must be >= 1"));
  EXPECT_THAT(Message(Check("  steps: 10", "  steps: 10\n  validation { directions: \"en-de\" }")),
              HasSubstr("train.validation.directions needs a corpus"));
  auto encoder_only =
      ParseRunSpecText(Replace(Replace(kValid, "kind: ENCODER_DECODER", "kind: ENCODER_ONLY"),
                               "  steps: 10", corpus + "}"),
                       "x.pbtxt");
  ASSERT_TRUE(encoder_only.ok());
  EXPECT_THAT(Message(ValidateRunSpec(*encoder_only, "x.pbtxt")),
              HasSubstr("train.corpus needs a model that generates text"));
}

TEST(SpecValidateTest, MissingTrainBlockSaysSo) {
  auto spec = ParseRunSpecText(std::string(kValid).substr(0, std::string(kValid).find("train")),
                               "model_only.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::Status s = ValidateRunSpec(*spec, "model_only.pbtxt");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("model_only.pbtxt: train.lr=0 must be > 0"),
                                HasSubstr("the spec has no train { } block")));
  // The model alone is fine.
  EXPECT_TRUE(ValidateModelSpec(spec->model(), "model_only.pbtxt").ok());
}

TEST(SpecValidateTest, AllProblemsAreReportedTogether) {
  absl::Status s = Check("  heads: 4", "  heads: 3\n  residual_dropout: 2");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("x.pbtxt: model.d_model=64 is not divisible"),
                                HasSubstr("\nx.pbtxt: model.residual_dropout=2")));
}

TEST(SpecValidateTest, ValidSpecPasses) { EXPECT_TRUE(Check("", "").ok()); }

// ------------------------------------------------------------- overrides ---

TEST(ApplyOverrideTest, WithAndWithoutPrefix) {
  RunSpec spec = ValidSpec();
  ASSERT_TRUE(ApplyOverride(&spec, "model.d_model=128").ok());
  ASSERT_TRUE(ApplyOverride(&spec, "heads=8").ok());
  ASSERT_TRUE(ApplyOverride(&spec, "train.adamw.beta2=0.95").ok());
  ASSERT_TRUE(ApplyOverride(&spec, "steps=5").ok());
  ASSERT_TRUE(ApplyOverride(&spec, "synthetic.max_length=8").ok());
  ASSERT_TRUE(ApplyOverride(&spec, " lr = 2.5e-4 ").ok());
  EXPECT_EQ(spec.model().d_model(), 128);
  EXPECT_EQ(spec.model().heads(), 8);
  EXPECT_FLOAT_EQ(spec.train().adamw().beta2(), 0.95f);
  EXPECT_EQ(spec.train().steps(), 5);
  EXPECT_EQ(spec.train().synthetic().max_length(), 8);
  EXPECT_FLOAT_EQ(spec.train().lr(), 2.5e-4f);
}

TEST(ApplyOverrideTest, EnumsBoolsStringsAndOptionalFields) {
  RunSpec spec = ValidSpec();
  ASSERT_TRUE(ApplyOverride(&spec, "norm=PRE_LN").ok());
  EXPECT_EQ(spec.model().norm(), PRE_LN);
  ASSERT_TRUE(ApplyOverride(&spec, "model.norm=deepnorm").ok());  // case-insensitive
  EXPECT_EQ(spec.model().norm(), DEEPNORM);
  ASSERT_TRUE(ApplyOverride(&spec, "tied_embeddings=false").ok());
  EXPECT_TRUE(spec.model().has_tied_embeddings());
  EXPECT_FALSE(spec.model().tied_embeddings());
  ASSERT_TRUE(ApplyOverride(&spec, "dtype=\"f64\"").ok());
  EXPECT_EQ(spec.train().dtype(), "f64");
  ASSERT_TRUE(ApplyOverride(&spec, "name=my model").ok());
  EXPECT_EQ(spec.model().name(), "my model");
  ASSERT_TRUE(ApplyOverride(&spec, "encoder_alpha=1.25").ok());
  EXPECT_TRUE(spec.model().has_encoder_alpha());
  EXPECT_FLOAT_EQ(spec.model().encoder_alpha(), 1.25f);
  ASSERT_TRUE(ApplyOverride(&spec, "branch_norm.shape=NORMALIZED_POWER").ok());
  EXPECT_EQ(spec.model().branch_norm().shape(), NORMALIZED_POWER);
  ASSERT_TRUE(ApplyOverride(&spec, "seed=18446744073709551615").ok());
  EXPECT_EQ(spec.train().seed(), 18446744073709551615ull);
}

TEST(ApplyOverrideTest, UnknownComponentListsValidNames) {
  RunSpec spec = ValidSpec();
  absl::Status s = ApplyOverride(&spec, "model.d_modle=128");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(s), AllOf(HasSubstr("--set 'model.d_modle=128'"),
                                HasSubstr("ModelSpec (model) has no field 'd_modle'"),
                                HasSubstr("did you mean 'd_model'?"),
                                HasSubstr("valid fields: name, kind, vocab_size")));
  s = ApplyOverride(&spec, "train.adamw.beta3=0.9");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("AdamW (train.adamw) has no field 'beta3'"),
                                HasSubstr("valid fields: beta1, beta2, epsilon, weight_decay")));
  s = ApplyOverride(&spec, "stepz=5");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("--set 'stepz=5': unknown field 'stepz'"),
                                HasSubstr("did you mean 'steps'?"),
                                HasSubstr("a path starts with model. or train.")));
}

TEST(ApplyOverrideTest, RepeatedFieldIsRejected) {
  RunSpec spec = ValidSpec();
  absl::Status s = ApplyOverride(&spec, "model.norm_override.norm=PRE_LN");
  EXPECT_THAT(Message(s), HasSubstr("model.norm_override is a repeated field (a list of "
                                    "NormOverride); --set can replace lists of plain values only"));
}

TEST(ApplyOverrideTest, RepeatedScalarsTakeACommaList) {
  RunSpec spec = ValidSpec();
  ASSERT_TRUE(ApplyOverride(&spec, "pipeline.boundaries=3, 6").ok());
  ASSERT_EQ(spec.train().pipeline().boundaries_size(), 2);
  EXPECT_EQ(spec.train().pipeline().boundaries(1), 6);
  ASSERT_TRUE(ApplyOverride(&spec, "pipeline.stage_recompute=full,none").ok());
  EXPECT_EQ(spec.train().pipeline().stage_recompute(0), "full");
  ASSERT_TRUE(ApplyOverride(&spec, "pipeline.boundaries=").ok());
  EXPECT_EQ(spec.train().pipeline().boundaries_size(), 0);
  EXPECT_THAT(Message(ApplyOverride(&spec, "pipeline.boundaries=3,x")),
              HasSubstr("'x' is not a valid"));
}

TEST(ApplyOverrideTest, MalformedAssignments) {
  RunSpec spec = ValidSpec();
  EXPECT_THAT(Message(ApplyOverride(&spec, "steps")), HasSubstr("expected path=value"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "train..lr=1")), HasSubstr("has an empty component"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "=1")), HasSubstr("has an empty component"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "train.adamw=0.9")),
              HasSubstr("train.adamw is a message (AdamW); set one of its fields: "
                        "train.adamw.beta1, train.adamw.beta2"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "d_model.x=3")),
              HasSubstr("model.d_model is a int32, not a message"));
}

TEST(ApplyOverrideTest, BadValues) {
  RunSpec spec = ValidSpec();
  EXPECT_THAT(Message(ApplyOverride(&spec, "d_model=big")),
              HasSubstr("--set 'd_model=big': model.d_model is int32 and takes a whole number"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "d_model=1.5")), HasSubstr("takes a whole number"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "d_model=99999999999")),
              HasSubstr("takes a whole number"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "seed=-1")), HasSubstr("in [0, 2^64)"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "lr=fast")), HasSubstr("takes a finite number"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "lr=inf")), HasSubstr("takes a finite number"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "tied_embeddings=perhaps")),
              HasSubstr("takes true or false"));
  EXPECT_THAT(Message(ApplyOverride(&spec, "norm=PRELN")),
              AllOf(HasSubstr("'PRELN' is not a ResidualNorm (did you mean 'PRE_LN'?)"),
                    HasSubstr("model.norm takes one of: POST_LN, PRE_LN, DEEPNORM")));
  // Nothing was changed by the failed overrides.
  EXPECT_EQ(spec.model().d_model(), 64);
  EXPECT_EQ(spec.model().norm(), DEEPNORM);
}

TEST(ApplyOverrideTest, ScheduleTakesSpellingsAndNames) {
  const std::pair<const char*, PipelineSchedule> cases[] = {
      {"pipeline.schedule=1f1b", SCHEDULE_1F1B},
      {"train.pipeline.schedule=gpipe", SCHEDULE_GPIPE},
      {"pipeline.schedule=interleaved", SCHEDULE_INTERLEAVED_1F1B},
      {"pipeline.schedule=\"1f1b\"", SCHEDULE_1F1B},
      {"pipeline.schedule=SCHEDULE_GPIPE", SCHEDULE_GPIPE},
      {"pipeline.schedule=Interleaved", SCHEDULE_INTERLEAVED_1F1B},
  };
  RunSpec spec = ValidSpec();
  for (const auto& [assignment, expected] : cases) {
    ASSERT_TRUE(ApplyOverride(&spec, assignment).ok()) << assignment;
    EXPECT_EQ(spec.train().pipeline().schedule(), expected) << assignment;
  }
  EXPECT_THAT(Message(ApplyOverride(&spec, "pipeline.schedule=1f2b")),
              AllOf(HasSubstr("'1f2b' is not a PipelineSchedule (did you mean '1f1b'?)"),
                    HasSubstr("train.pipeline.schedule takes one of: gpipe (SCHEDULE_GPIPE), "
                              "1f1b (SCHEDULE_1F1B), interleaved (SCHEDULE_INTERLEAVED_1F1B)")));
}

// ------------------------------------------------------------- defaults ---

TEST(ApplyDefaultsTest, FillsDocumentedDefaults) {
  RunSpec spec = ValidSpec();
  ApplyDefaults(&spec);
  const ModelSpec& m = spec.model();
  EXPECT_EQ(m.max_positions(), 1024);
  EXPECT_FLOAT_EQ(m.layer_norm_eps(), 1e-5f);
  EXPECT_EQ(m.activation(), GELU);
  EXPECT_TRUE(m.has_tied_embeddings());
  EXPECT_TRUE(m.tied_embeddings());
  EXPECT_FALSE(m.has_branch_norm());    // no layer uses BRANCHNORM
  EXPECT_FALSE(m.has_encoder_alpha());  // α/β stay derived from depth
  const TrainConfig& t = spec.train();
  EXPECT_FLOAT_EQ(t.adamw().beta1(), 0.9f);
  EXPECT_FLOAT_EQ(t.adamw().beta2(), 0.98f);
  EXPECT_FLOAT_EQ(t.adamw().epsilon(), 1e-8f);
  EXPECT_EQ(t.microbatches(), 1);
  EXPECT_EQ(t.log_interval(), 1);
  EXPECT_EQ(t.lr_schedule(), INVERSE_SQRT);
  EXPECT_EQ(t.synthetic().task(), REVERSE);
  EXPECT_EQ(t.synthetic().min_length(), 4);
  EXPECT_EQ(t.synthetic().max_length(), 12);
  EXPECT_EQ(t.dtype(), "f32");
  EXPECT_EQ(t.pipeline().schedule(), SCHEDULE_1F1B);
  EXPECT_EQ(t.eval_interval(), 0);  // 0 means disabled, not a default

  RunSpec again = spec;
  ApplyDefaults(&again);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(spec, again));
}

TEST(ApplyDefaultsTest, KeepsSetValuesAndFillsBranchNormOnlyWhenUsed) {
  RunSpec spec = ValidSpec();
  spec.mutable_model()->set_tied_embeddings(false);
  spec.mutable_model()->set_activation(RELU);
  spec.mutable_train()->mutable_adamw()->set_beta2(0.95f);
  spec.mutable_train()->set_dtype("f64");
  NormOverride* o = spec.mutable_model()->add_norm_override();
  o->set_norm(BRANCHNORM);
  ApplyDefaults(&spec);
  EXPECT_FALSE(spec.model().tied_embeddings());
  EXPECT_EQ(spec.model().activation(), RELU);
  EXPECT_FLOAT_EQ(spec.train().adamw().beta2(), 0.95f);
  EXPECT_EQ(spec.train().dtype(), "f64");
  EXPECT_EQ(spec.model().branch_norm().shape(), LINEAR_SCALE);
  EXPECT_FLOAT_EQ(spec.model().branch_norm().start_scale(), 0.1f);
}

// ---------------------------------------------------------- norm lookup ---

TEST(NormForLayerTest, LaterOverridesWin) {
  ModelSpec m = ValidSpec().model();
  m.set_encoder_layers(6);
  m.set_decoder_layers(6);
  m.set_norm(POST_LN);
  auto add = [&](Stack stack, int first, int last, ResidualNorm norm) {
    NormOverride* o = m.add_norm_override();
    o->set_stack(stack);
    o->set_first_layer(first);
    o->set_last_layer(last);
    o->set_norm(norm);
  };
  add(STACK_UNSPECIFIED, 0, 3, PRE_LN);  // both stacks
  add(ENCODER, 2, 4, DEEPNORM);          // overlaps the first on encoder 2..3
  add(DECODER, 3, 3, SUBLN);
  const ResidualNorm expected_encoder[] = {PRE_LN, PRE_LN, DEEPNORM, DEEPNORM, DEEPNORM, POST_LN};
  const ResidualNorm expected_decoder[] = {PRE_LN, PRE_LN, PRE_LN, SUBLN, POST_LN, POST_LN};
  for (int i = 0; i < 6; ++i) {
    auto enc = NormForLayer(m, ENCODER, i);
    auto dec = NormForLayer(m, DECODER, i);
    ASSERT_TRUE(enc.ok() && dec.ok());
    EXPECT_EQ(*enc, expected_encoder[i]) << "encoder layer " << i;
    EXPECT_EQ(*dec, expected_decoder[i]) << "decoder layer " << i;
  }
}

TEST(NormForLayerTest, BadArguments) {
  ModelSpec m = ValidSpec().model();
  EXPECT_THAT(Message(NormForLayer(m, ENCODER, 2).status()),
              HasSubstr("encoder layer 2 is outside 0..1"));
  EXPECT_THAT(Message(NormForLayer(m, DECODER, -1).status()), HasSubstr("outside"));
  EXPECT_THAT(Message(NormForLayer(m, STACK_UNSPECIFIED, 0).status()),
              HasSubstr("stack must be ENCODER or DECODER"));
  m.set_norm(RESIDUAL_NORM_UNSPECIFIED);
  EXPECT_THAT(Message(NormForLayer(m, ENCODER, 0).status()), HasSubstr("has no valid norm"));
}

// ------------------------------------------------------------ round trip ---

TEST(ResolvedSpecTextTest, RoundTrips) {
  RunSpec spec = ValidSpec();
  ASSERT_TRUE(ApplyOverride(&spec, "lr=3.7e-4").ok());
  ASSERT_TRUE(ApplyOverride(&spec, "label_smoothing=0.1").ok());
  spec.mutable_model()->add_norm_override()->set_norm(PRE_LN);
  ApplyDefaults(&spec);
  const std::string text = ResolvedSpecText(spec);
  EXPECT_THAT(text, HasSubstr("max_positions: 1024"));
  EXPECT_THAT(text, HasSubstr("schedule: SCHEDULE_1F1B"));
  auto parsed = ParseRunSpecText(text, "resolved");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(spec, *parsed)) << text;
}

// Until the enum, PipelineConfig field 2 held the schedule as a string, and
// checkpoint manifests store the resolved spec in binary: such a manifest
// must still parse, the old value left aside and the schedule unset (1F1B).
TEST(SpecCompatibilityTest, ManifestWithTheOldStringScheduleStillParses) {
  RunSpec spec = ValidSpec();
  spec.mutable_train()->mutable_pipeline()->set_stages(2);
  std::string pipeline_bytes;
  ASSERT_TRUE(spec.train().pipeline().SerializeToString(&pipeline_bytes));
  pipeline_bytes += std::string("\x12\x05gpipe", 7);  // field 2, length-delimited
  PipelineConfig old_pipeline;
  ASSERT_TRUE(old_pipeline.ParseFromString(pipeline_bytes));
  EXPECT_EQ(old_pipeline.stages(), 2);
  EXPECT_EQ(old_pipeline.schedule(), PIPELINE_SCHEDULE_UNSPECIFIED);
  *spec.mutable_train()->mutable_pipeline() = old_pipeline;
  ApplyDefaults(&spec);
  EXPECT_EQ(spec.train().pipeline().schedule(), SCHEDULE_1F1B);
}

// ---------------------------------------------------------------- files ---

TEST_F(TempFiles, LoadAppliesConfigThenOverridesThenDefaults) {
  const std::string spec_path = Write("spec.pbtxt", kValid);
  const std::string config_path =
      Write("train.pbtxt", "lr: 5e-4\nadamw { beta2: 0.95 }\nwarmup_steps: 7\n");
  auto spec = LoadRunSpec(spec_path, config_path, {"steps=20", "train.warmup_steps=9"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FLOAT_EQ(spec->train().lr(), 5e-4f);             // from the config
  EXPECT_EQ(spec->train().tokens_per_batch(), 512);       // kept from the spec
  EXPECT_FLOAT_EQ(spec->train().adamw().beta2(), 0.95f);  // merged into adamw
  EXPECT_FLOAT_EQ(spec->train().adamw().beta1(), 0.9f);   // default
  EXPECT_EQ(spec->train().steps(), 20);                   // override
  EXPECT_EQ(spec->train().warmup_steps(), 9);             // override beats config
  EXPECT_EQ(spec->model().max_positions(), 1024);         // default
}

TEST_F(TempFiles, MissingFilesAreNotFound) {
  auto spec = LoadRunSpec("/nonexistent/dir/spec.pbtxt", "", {});
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(spec.status()),
              AllOf(HasSubstr("cannot read spec file '/nonexistent/dir/spec.pbtxt'"),
                    HasSubstr("No such file")));
  const std::string spec_path = Write("spec.pbtxt", kValid);
  spec = LoadRunSpec(spec_path, "/nonexistent/train.pbtxt", {});
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(spec.status()), HasSubstr("cannot read config file '/nonexistent/train"));
  // A directory is not a spec either.
  spec = LoadRunSpec(::testing::TempDir(), "", {});
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TempFiles, BadConfigFileNamesItsLine) {
  const std::string spec_path = Write("spec.pbtxt", kValid);
  const std::string config_path = Write("train.pbtxt", "lr: 5e-4\n  stepz: 3\n");
  auto spec = LoadRunSpec(spec_path, config_path, {});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(Message(spec.status()),
              AllOf(HasSubstr(config_path + ":2:3: "), HasSubstr("did you mean 'steps'?")));
  // A config is a TrainConfig: a train { } wrapper is the classic mistake.
  const std::string wrapped = Write("wrapped.pbtxt", "train {\n  lr: 1\n}\n");
  spec = LoadRunSpec(spec_path, wrapped, {});
  EXPECT_THAT(Message(spec.status()),
              AllOf(HasSubstr(wrapped + ":1:1: "), HasSubstr("TrainConfig has no field 'train'")));
}

TEST_F(TempFiles, SemanticErrorsNameBothFilesAndOverrideErrorsTheOverride) {
  const std::string spec_path = Write("spec.pbtxt", kValid);
  const std::string config_path = Write("train.pbtxt", "lr: -1\n");
  auto spec = LoadRunSpec(spec_path, config_path, {});
  EXPECT_THAT(Message(spec.status()),
              HasSubstr(spec_path + " + " + config_path + ": train.lr=-1 must be > 0"));
  spec = LoadRunSpec(spec_path, "", {"steps=3", "heads=5"});
  EXPECT_THAT(Message(spec.status()),
              HasSubstr(spec_path + ": model.d_model=64 is not divisible by model.heads=5"));
  spec = LoadRunSpec(spec_path, "", {"steps=3", "norm_override.first_layer=1"});
  EXPECT_THAT(Message(spec.status()), HasSubstr("--set 'norm_override.first_layer=1'"));
}

// docs/spec-reference.md must keep up with the protos: every field and enum
// value a user can write is named there.
TEST(SpecReferenceDocTest, NamesEveryFieldAndEnumValue) {
  std::ifstream in(std::string(PIPETRAIN_SOURCE_DIR) + "/docs/spec-reference.md");
  ASSERT_TRUE(in) << "docs/spec-reference.md is missing";
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  namespace pb = google::protobuf;
  for (const pb::Descriptor* message :
       {RunSpec::descriptor(), ModelSpec::descriptor(), BranchNorm::descriptor(),
        NormOverride::descriptor(), TrainConfig::descriptor(), AdamW::descriptor(),
        SyntheticData::descriptor(), PipelineConfig::descriptor(), CorpusData::descriptor(),
        Validation::descriptor()}) {
    for (int i = 0; i < message->field_count(); ++i) {
      const pb::FieldDescriptor* field = message->field(i);
      EXPECT_THAT(doc, HasSubstr(field->name())) << message->name() << "." << field->name();
      if (const pb::EnumDescriptor* e = field->enum_type()) {
        for (int v = 0; v < e->value_count(); ++v) {
          if (e->value(v)->number() == 0) continue;  // the *_UNSPECIFIED placeholders
          EXPECT_THAT(doc, HasSubstr("`" + e->value(v)->name())) << e->value(v)->name();
        }
      }
    }
  }
}

}  // namespace
}  // namespace pipetrain
