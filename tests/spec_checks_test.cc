// The residual-norm rules of models/spec_checks.h, run as a SpecCheck after
// core/'s field checks; each error names the field, its value and the fix.
#include "models/spec_checks.h"

#include <string>

#include "core/config/spec_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/spec_fixture.h"

namespace pipetrain {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::Message;
using testing::Replace;

constexpr const char* kValid = testing::kValidSpec;
constexpr SpecCheck kNormChecks[] = {CheckModelNorms};

// kValid with `from` replaced by `to`, validated with the norm rules.
absl::Status Check(const std::string& from, const std::string& to) {
  return testing::CheckEditedSpec(from, to, kNormChecks);
}

TEST(NormRulesTest, NormMustBeSet) {
  EXPECT_THAT(Message(Check("  norm: DEEPNORM\n", "")),
              HasSubstr("x.pbtxt: model.norm=RESIDUAL_NORM_UNSPECIFIED is not a residual norm; "
                        "set norm: POST_LN"));
  // Text format accepts a number for an open enum; the check must not.
  EXPECT_THAT(Message(Check("  norm: DEEPNORM", "  norm: 77")), HasSubstr("model.norm=77"));
  // core/ alone does not know the rule.
  EXPECT_TRUE(testing::CheckEditedSpec("  norm: DEEPNORM\n", "").ok());
}

TEST(NormRulesTest, AlphaSetForPostLn) {
  absl::Status s = Check("  norm: DEEPNORM", "  norm: POST_LN\n  encoder_alpha: 2.0");
  EXPECT_THAT(Message(s), AllOf(HasSubstr("x.pbtxt: model.encoder_alpha=2 is set but no encoder "
                                          "layer uses DEEPNORM, FOUNDATION_LN or UPSCALE_LN"),
                                HasSubstr("its layers use POST_LN")));
}

TEST(NormRulesTest, BetaSetForUpscaleLn) {
  absl::Status s = Check("  norm: DEEPNORM", "  norm: UPSCALE_LN\n  decoder_beta: 0.5");
  EXPECT_THAT(Message(s), HasSubstr("model.decoder_beta=0.5 is set but no decoder layer uses "
                                    "DEEPNORM (the only norm with an init gain beta)"));
  // α is fine for UPSCALE_LN.
  EXPECT_TRUE(Check("  norm: DEEPNORM", "  norm: UPSCALE_LN\n  decoder_alpha: 1.5").ok());
}

TEST(NormRulesTest, AlphaAllowedWhenAnOverrideUsesDeepNorm) {
  const std::string with_override =
      "  norm: POST_LN\n  encoder_alpha: 2.0\n"
      "  norm_override { stack: ENCODER first_layer: 1 last_layer: 1 norm: DEEPNORM }";
  EXPECT_TRUE(Check("  norm: DEEPNORM", with_override).ok())
      << Check("  norm: DEEPNORM", with_override);
  // The override only touches the encoder, so a decoder α is still an error.
  EXPECT_THAT(Message(Check("  norm: DEEPNORM", with_override + "\n  decoder_alpha: 2.0")),
              HasSubstr("model.decoder_alpha=2 is set but no decoder layer uses"));
}

TEST(NormRulesTest, AlphaForAMissingStackAndNonPositiveAlpha) {
  const std::string decoder_only =
      Replace(Replace(kValid, "ENCODER_DECODER", "DECODER_ONLY"), "  encoder_layers: 2", "");
  auto spec = ParseRunSpecText(
      Replace(decoder_only, "  norm: DEEPNORM", "  norm: DEEPNORM\n  encoder_alpha: 1.0"),
      "x.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(
      ValidateRunSpec(ParseRunSpecText(decoder_only, "x.pbtxt").value(), "x.pbtxt", kNormChecks)
          .ok());
  absl::Status s = ValidateRunSpec(*spec, "x.pbtxt", kNormChecks);
  EXPECT_THAT(
      Message(s),
      HasSubstr("model.encoder_alpha=1 is set but the model (DECODER_ONLY) has no encoder layers"));
  EXPECT_THAT(Message(Check("  norm: DEEPNORM", "  norm: DEEPNORM\n  encoder_beta: -1")),
              HasSubstr("model.encoder_beta=-1 must be a finite number > 0"));
}

TEST(NormRulesTest, BranchNormBlockWithoutBranchNorm) {
  absl::Status s =
      Check("  norm: DEEPNORM", "  norm: DEEPNORM\n  branch_norm { max_norm_step: 5 }");
  EXPECT_THAT(Message(s), HasSubstr("x.pbtxt: model.branch_norm is set but no layer uses "
                                    "BRANCHNORM (layers use DEEPNORM)"));
}

TEST(NormRulesTest, BranchNormNeedsMaxNormStepAndAScaleInRange) {
  EXPECT_THAT(Message(Check("  norm: DEEPNORM", "  norm: BRANCHNORM")),
              HasSubstr("model.branch_norm.max_norm_step=0 must be > 0 when BRANCHNORM is used"));
  EXPECT_THAT(Message(Check("  norm: DEEPNORM",
                            "  norm: BRANCHNORM\n"
                            "  branch_norm { max_norm_step: 100 start_scale: 1.5 }")),
              HasSubstr("model.branch_norm.start_scale=1.5 must be in [0, 1]"));
  EXPECT_THAT(Message(Check("  norm: DEEPNORM",
                            "  norm: BRANCHNORM\n  branch_norm { shape: NORMALIZED_POWER "
                            "max_norm_step: 100 start_scale: 0.5 }")),
              HasSubstr("has no effect with shape NORMALIZED_POWER"));
  EXPECT_TRUE(
      Check("  norm: DEEPNORM", "  norm: BRANCHNORM\n  branch_norm { max_norm_step: 100 }").ok());
}

TEST(NormRulesTest, OverrideRangeChecks) {
  auto with = [](const std::string& override_text) {
    return Message(
        Check("  norm: DEEPNORM", "  norm: DEEPNORM\n  norm_override { " + override_text + " }"));
  };
  EXPECT_THAT(with("stack: DECODER first_layer: 0 last_layer: 2 norm: PRE_LN"),
              HasSubstr("x.pbtxt: model.norm_override[0].last_layer=2 is outside the decoder's 2 "
                        "layers (valid 0..1)"));
  EXPECT_THAT(with("stack: DECODER first_layer: 1 last_layer: 0 norm: PRE_LN"),
              HasSubstr("model.norm_override[0].first_layer=1 is after last_layer=0"));
  EXPECT_THAT(with("stack: DECODER first_layer: -1 last_layer: 0 norm: PRE_LN"),
              HasSubstr("model.norm_override[0].first_layer=-1 must be >= 0"));
  EXPECT_THAT(with("stack: DECODER first_layer: 0 last_layer: 0"),
              HasSubstr("model.norm_override[0].norm is not set"));
  EXPECT_THAT(with("first_layer: 0 last_layer: 5 norm: PRE_LN"),
              HasSubstr("with stack unset the range applies to both stacks"));
}

TEST(NormRulesTest, OverrideStackMustExist) {
  absl::Status s = ValidateRunSpec(
      *ParseRunSpecText(
          Replace(Replace(kValid, "ENCODER_DECODER", "DECODER_ONLY"), "  encoder_layers: 2\n",
                  "  norm_override { stack: ENCODER last_layer: 0 norm: PRE_LN }\n"),
          "x.pbtxt"),
      "x.pbtxt", kNormChecks);
  EXPECT_THAT(Message(s), HasSubstr("model.norm_override[0].stack=ENCODER but the model "
                                    "(DECODER_ONLY) has no encoder layers"));
}

TEST(NormRulesTest, ModelSpecAloneTakesTheChecksToo) {
  auto spec = ParseRunSpecText(
      Replace(kValid, "  norm: DEEPNORM", "  norm: POST_LN\n  encoder_beta: 1"), "x.pbtxt");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(ValidateModelSpec(spec->model(), "m.pbtxt").ok());
  EXPECT_THAT(Message(ValidateModelSpec(spec->model(), "m.pbtxt", kNormChecks)),
              HasSubstr("m.pbtxt: model.encoder_beta=1 is set but no encoder layer uses DEEPNORM"));
}

TEST(NormRulesTest, ValidSpecPasses) { EXPECT_TRUE(Check("", "").ok()); }

}  // namespace
}  // namespace pipetrain
