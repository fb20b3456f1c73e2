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

}  // namespace
}  // namespace pipetrain
