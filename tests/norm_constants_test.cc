#include "models/norm_constants.h"

#include "gtest/gtest.h"

namespace pipetrain {
namespace {

// Expected values computed independently (Python, from the DeepNet paper's
// formulas), not by the code under test.
struct DeepNormCase {
  int n, m;
  double enc_alpha, enc_beta, dec_alpha, dec_beta;
};

class DeepNormConstantsTest : public ::testing::TestWithParam<DeepNormCase> {};

TEST_P(DeepNormConstantsTest, MatchesFormulas) {
  const DeepNormCase& c = GetParam();
  const NormConstants k = DeepNormConstants(c.n, c.m);
  EXPECT_NEAR(k.encoder.alpha, c.enc_alpha, 1e-12);
  EXPECT_NEAR(k.encoder.beta, c.enc_beta, 1e-12);
  EXPECT_NEAR(k.decoder.alpha, c.dec_alpha, 1e-12);
  EXPECT_NEAR(k.decoder.beta, c.dec_beta, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(
    EncoderDecoder, DeepNormConstantsTest,
    ::testing::Values(DeepNormCase{6, 6, 1.417938140685523, 0.49698924077132345, 2.0597671439071177,
                                   0.34329452398451965},
                      DeepNormCase{100, 100, 3.4157416777715164, 0.206309512392564,
                                   4.161791450287817, 0.16990442448471224},
                      DeepNormCase{500, 500, 5.64824004086667, 0.12476452751676437,
                                   6.223329772884783, 0.11362193664674994}));

TEST(DeepNormConstantsTest, OneStack) {
  // α = (2N)^(1/4), β = (8N)^(−1/4) for encoder-only and decoder-only alike.
  const NormConstants enc = DeepNormConstants(24, 0);
  EXPECT_NEAR(enc.encoder.alpha, 2.6321480259049848, 1e-12);
  EXPECT_NEAR(enc.encoder.beta, 0.2686424829558855, 1e-12);
  const NormConstants dec = DeepNormConstants(0, 1000);
  EXPECT_NEAR(dec.decoder.alpha, 6.68740304976422, 1e-12);
  EXPECT_NEAR(dec.decoder.beta, 0.10573712634405641, 1e-12);
  const NormConstants six = DeepNormConstants(0, 6);
  EXPECT_NEAR(six.decoder.alpha, 1.8612097182041991, 1e-12);
  EXPECT_NEAR(six.decoder.beta, 0.37991784282579627, 1e-12);
}

TEST(ResolveNormConstantsTest, SpecFieldsWinAndOtherNormsHaveNone) {
  ModelSpec spec;
  spec.set_encoder_layers(6);
  spec.set_decoder_layers(6);
  NormConstants k = ResolveNormConstants(spec, DEEPNORM);
  EXPECT_NEAR(k.encoder.alpha, 1.417938140685523, 1e-12);
  spec.set_encoder_alpha(2.5f);
  spec.set_decoder_beta(0.25f);
  k = ResolveNormConstants(spec, DEEPNORM);
  EXPECT_FLOAT_EQ(k.encoder.alpha, 2.5f);
  EXPECT_FLOAT_EQ(k.decoder.beta, 0.25f);
  EXPECT_NEAR(k.encoder.beta, 0.49698924077132345, 1e-12);

  ModelSpec plain;
  plain.set_encoder_layers(6);
  plain.set_decoder_layers(6);
  k = ResolveNormConstants(plain, POST_LN);
  EXPECT_EQ(k.encoder.alpha, 1.0);
  EXPECT_EQ(k.decoder.beta, 1.0);
  k = ResolveNormConstants(plain, FOUNDATION_LN);
  EXPECT_NEAR(k.decoder.alpha, 0.974, 1e-12);
  EXPECT_EQ(k.decoder.beta, 1.0);  // FoundationLN scales no init
  ModelSpec encoder_only;
  encoder_only.set_encoder_layers(24);
  k = ResolveNormConstants(encoder_only, UPSCALE_LN);
  EXPECT_NEAR(k.encoder.alpha, 2.6321480259049848, 1e-12);
  EXPECT_EQ(k.encoder.beta, 1.0);
}

// DescribeNormConstants: the numbers are the formulas of DESIGN.md ("Numbers
// to keep in mind") evaluated in Python and rounded to 6 significant digits,
// not output of the code under test.
ModelSpec Stacks(ModelKind kind, int encoder, int decoder, ResidualNorm norm) {
  ModelSpec spec;
  spec.set_kind(kind);
  spec.set_encoder_layers(encoder);
  spec.set_decoder_layers(decoder);
  spec.set_norm(norm);
  return spec;
}

TEST(DescribeNormConstantsTest, DeepNormPerStack) {
  // 6+6: encoder 0.81·(6⁴·6)^(1/16), 0.87·(6⁴·6)^(−1/16); decoder (18)^(1/4), (72)^(−1/4).
  EXPECT_EQ(DescribeNormConstants(Stacks(ENCODER_DECODER, 6, 6, DEEPNORM)),
            "DEEPNORM encoder alpha=1.41794 beta=0.496989, decoder alpha=2.05977 beta=0.343295");
  // 100+100 (M2M 200L).
  EXPECT_EQ(DescribeNormConstants(Stacks(ENCODER_DECODER, 100, 100, DEEPNORM)),
            "DEEPNORM encoder alpha=3.41574 beta=0.20631, decoder alpha=4.16179 beta=0.169904");
  // One stack of N: (2N)^(1/4), (8N)^(−1/4).
  EXPECT_EQ(DescribeNormConstants(Stacks(DECODER_ONLY, 0, 1000, DEEPNORM)),
            "DEEPNORM decoder alpha=6.6874 beta=0.105737");
  EXPECT_EQ(DescribeNormConstants(Stacks(ENCODER_ONLY, 24, 0, DEEPNORM)),
            "DEEPNORM encoder alpha=2.63215 beta=0.268642");
  // Spec fields replace the derived values and say so.
  ModelSpec set = Stacks(ENCODER_DECODER, 6, 6, DEEPNORM);
  set.set_encoder_alpha(2.5f);
  set.set_decoder_beta(0.25f);
  EXPECT_EQ(DescribeNormConstants(set),
            "DEEPNORM encoder alpha=2.5(set) beta=0.496989, decoder alpha=2.05977 beta=0.25(set)");
}

TEST(DescribeNormConstantsTest, AlphaOnlyNorms) {
  // UpscaleLN: α = (2N)^(1/4) with each stack's own depth; no β.
  EXPECT_EQ(DescribeNormConstants(Stacks(ENCODER_DECODER, 24, 12, UPSCALE_LN)),
            "UPSCALE_LN encoder alpha=2.63215, decoder alpha=2.21336");
  ModelSpec foundation = Stacks(ENCODER_DECODER, 6, 6, FOUNDATION_LN);
  foundation.set_decoder_alpha(0.9f);
  EXPECT_EQ(DescribeNormConstants(foundation),
            "FOUNDATION_LN encoder alpha=0.974, decoder alpha=0.9(set)");
  EXPECT_EQ(DescribeNormConstants(Stacks(ENCODER_DECODER, 2, 2, PRE_LN)),
            "PRE_LN encoder, decoder");
}

TEST(DescribeNormConstantsTest, BranchNormSettings) {
  ModelSpec linear = Stacks(ENCODER_DECODER, 2, 2, BRANCHNORM);
  linear.mutable_branch_norm()->set_shape(LINEAR_SCALE);
  linear.mutable_branch_norm()->set_start_scale(0.1f);
  linear.mutable_branch_norm()->set_max_norm_step(4000);
  EXPECT_EQ(DescribeNormConstants(linear),
            "BRANCHNORM encoder, decoder shape=LINEAR_SCALE start_scale=0.1 max_norm_step=4000");
  ModelSpec power = Stacks(DECODER_ONLY, 0, 4, BRANCHNORM);
  power.mutable_branch_norm()->set_shape(NORMALIZED_POWER);
  power.mutable_branch_norm()->set_max_norm_step(500);
  EXPECT_EQ(DescribeNormConstants(power),
            "BRANCHNORM decoder shape=NORMALIZED_POWER max_norm_step=500");
}

TEST(DescribeNormConstantsTest, OverridesNameTheirLayerRanges) {
  ModelSpec spec = Stacks(ENCODER_DECODER, 12, 6, POST_LN);
  NormOverride* deep = spec.add_norm_override();
  deep->set_stack(ENCODER);
  deep->set_first_layer(0);
  deep->set_last_layer(5);
  deep->set_norm(DEEPNORM);
  NormOverride* pre = spec.add_norm_override();
  pre->set_stack(DECODER);
  pre->set_first_layer(0);
  pre->set_last_layer(0);
  pre->set_norm(PRE_LN);
  // DeepNorm's constants come from the whole depth, 12+6, also for a range:
  // encoder 0.81·(12⁴·6)^(1/16), 0.87·(12⁴·6)^(−1/16).
  EXPECT_EQ(DescribeNormConstants(spec),
            "DEEPNORM encoder[0-5] alpha=1.68622 beta=0.417916; POST_LN encoder[6-11], "
            "decoder[1-5]; PRE_LN decoder[0]");
  // A range in the middle splits the stack's other norm in two.
  ModelSpec middle = Stacks(ENCODER_ONLY, 6, 0, POST_LN);
  NormOverride* o = middle.add_norm_override();
  o->set_first_layer(2);
  o->set_last_layer(3);
  o->set_norm(UPSCALE_LN);
  EXPECT_EQ(DescribeNormConstants(middle),
            "POST_LN encoder[0-1,4-5]; UPSCALE_LN encoder[2-3] alpha=1.86121");
}

}  // namespace
}  // namespace pipetrain
