// Whole-layer gradient checks: an encoder layer and a decoder layer of every
// normalisation kind, in fp64, against central finite differences, with
// dropout on (its masks are a fixed function of the key) and padding masks.
#include "models/transformer_layer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/philox.h"
#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain {
namespace {

using testing::NumericGradient;
using testing::RandomTensor;
using testing::RelativeError;
using testing::WeightedSum;

struct LayerCase {
  ResidualNorm norm;
  BranchNormShape branch_shape;
  bool decoder;
};

std::string CaseName(const ::testing::TestParamInfo<LayerCase>& info) {
  std::string name = ResidualNorm_Name(info.param.norm);
  if (info.param.norm == BRANCHNORM) name += "_" + BranchNormShape_Name(info.param.branch_shape);
  return name + (info.param.decoder ? "_Decoder" : "_Encoder");
}

class LayerGradientTest : public ::testing::TestWithParam<LayerCase> {};

TEST_P(LayerGradientTest, MatchesFiniteDifferences) {
  const LayerCase& c = GetParam();
  LayerConfig config;
  config.d_model = 8;
  config.ffn_dim = 12;
  config.heads = 2;
  config.norm = c.norm;
  config.alpha =
      (c.norm == DEEPNORM || c.norm == FOUNDATION_LN || c.norm == UPSCALE_LN) ? 1.7 : 1.0;
  config.beta = c.norm == DEEPNORM ? 0.6 : 1.0;
  config.branch.set_shape(c.branch_shape);
  config.branch.set_max_norm_step(10);
  config.branch.set_start_scale(0.2f);
  config.attention_dropout = 0.2;
  config.activation_dropout = 0.2;
  config.residual_dropout = 0.2;
  config.causal = c.decoder;
  config.cross = c.decoder;
  config.index = 3;

  ParameterStore store(DType::kF64);
  TransformerLayer layer(store, "layer", config);
  store.Finalize();
  store.Initialize(11);
  // Perturb every parameter so LN gains are not 1 and biases not 0.
  Tensor noise = RandomTensor(store.flat_params().shape(), 5, 0.1);
  for (int64_t i = 0; i < noise.numel(); ++i) {
    store.flat_params().data<double>()[i] += noise.data<double>()[i];
  }

  const int64_t b = 2, t = 3, s = 4, d = config.d_model;
  Tensor x = RandomTensor({b, t, d}, 1);
  Tensor memory = c.decoder ? RandomTensor({b, s, d}, 2) : Tensor();
  Tensor self_lengths = Tensor::FromInts({3, 2}, {b});
  Tensor memory_lengths = c.decoder ? Tensor::FromInts({4, 2}, {b}) : Tensor();
  Tensor w = RandomTensor({b, t, d}, 3);
  // Mid-schedule, so BranchNorm's rescaling is neither off nor finished.
  const StepContext ctx{.seed = 9, .step = 5, .microbatch = 1, .training = true};

  auto loss = [&]() {
    LayerSaved saved;
    auto y = layer.Forward(ctx, x, self_lengths, memory, memory_lengths, &saved);
    EXPECT_TRUE(y.ok()) << y.status();
    return WeightedSum(*y, w);
  };

  LayerSaved saved;
  auto y = layer.Forward(ctx, x, self_lengths, memory, memory_lengths, &saved);
  ASSERT_TRUE(y.ok()) << y.status();
  Tensor dmemory;
  auto dx = layer.BackwardInput(ctx, &saved, w, &dmemory);
  ASSERT_TRUE(dx.ok()) << dx.status();
  ASSERT_TRUE(layer.BackwardWeight(&saved).ok());

  EXPECT_LT(RelativeError(*dx, NumericGradient(loss, x)), 1e-6);
  if (c.decoder) {
    ASSERT_TRUE(dmemory.defined());
    EXPECT_LT(RelativeError(dmemory, NumericGradient(loss, memory)), 1e-6);
  }
  Tensor analytic = store.flat_grads().Clone();
  Tensor numeric = NumericGradient(loss, store.flat_params());
  EXPECT_LT(RelativeError(analytic, numeric), 1e-6);
  // Parameter by parameter, so a failure names the culprit. The floor is a
  // small fraction of the largest gradient: the key bias, for one, has an
  // exactly zero gradient (softmax ignores a shift shared by a whole row), and
  // its finite differences are pure rounding noise.
  double scale = 0;
  for (int64_t i = 0; i < numeric.numel(); ++i) scale = std::max(scale, std::abs(numeric.At(i)));
  for (const ParameterInfo& info : store.infos()) {
    const Shape flat{NumElements(info.shape)};
    EXPECT_LT(RelativeError(analytic.View(info.offset, flat), numeric.View(info.offset, flat),
                            1e-3 * scale),
              1e-5)
        << info.name;
  }
}

std::vector<LayerCase> AllCases() {
  std::vector<LayerCase> cases;
  for (bool decoder : {false, true}) {
    for (ResidualNorm norm :
         {POST_LN, PRE_LN, DEEPNORM, NORMFORMER, FOUNDATION_LN, UPSCALE_LN, SUBLN}) {
      cases.push_back({norm, LINEAR_SCALE, decoder});
    }
    cases.push_back({BRANCHNORM, LINEAR_SCALE, decoder});
    cases.push_back({BRANCHNORM, NORMALIZED_POWER, decoder});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllNorms, LayerGradientTest, ::testing::ValuesIn(AllCases()), CaseName);

TEST(LayerTest, NormKindsRegisterTheirExtraParameters) {
  auto names = [](ResidualNorm norm) {
    LayerConfig config{.d_model = 8, .ffn_dim = 12, .heads = 2, .norm = norm, .cross = true};
    ParameterStore store(DType::kF32);
    TransformerLayer layer(store, "l", config);
    std::string all;
    for (const ParameterInfo& info : store.infos()) all += info.name + " ";
    return all;
  };
  EXPECT_NE(names(NORMFORMER).find("l.self_attn.head_scale"), std::string::npos);
  EXPECT_NE(names(NORMFORMER).find("l.self_attn.post_attn_ln.gamma"), std::string::npos);
  EXPECT_NE(names(NORMFORMER).find("l.ffn.inner_ln.gamma"), std::string::npos);
  EXPECT_NE(names(SUBLN).find("l.cross_attn.sub_ln.gamma"), std::string::npos);
  EXPECT_NE(names(SUBLN).find("l.ffn.inner_ln.gamma"), std::string::npos);
  EXPECT_NE(names(PRE_LN).find("l.ffn.pre_ln.gamma"), std::string::npos);
  EXPECT_EQ(names(PRE_LN).find("inner_ln"), std::string::npos);
  EXPECT_NE(names(DEEPNORM).find("l.ffn.post_ln.gamma"), std::string::npos);
  EXPECT_EQ(names(DEEPNORM).find("pre_ln"), std::string::npos);
}

TEST(LayerTest, BranchNormBecomesPostLnAfterMaxNormStep) {
  // After T steps both BranchNorm shapes compute exactly what Post-LN computes.
  for (BranchNormShape shape : {LINEAR_SCALE, NORMALIZED_POWER}) {
    LayerConfig config{.d_model = 8, .ffn_dim = 12, .heads = 2, .norm = BRANCHNORM};
    config.branch.set_shape(shape);
    config.branch.set_max_norm_step(10);
    config.branch.set_start_scale(0.1f);
    ParameterStore branch_store(DType::kF64);
    TransformerLayer branch(branch_store, "l", config);
    branch_store.Finalize();
    branch_store.Initialize(4);
    config.norm = POST_LN;
    ParameterStore post_store(DType::kF64);
    TransformerLayer post(post_store, "l", config);
    post_store.Finalize();
    post_store.Initialize(4);
    Tensor x = RandomTensor({2, 3, 8}, 1);
    Tensor lengths = Tensor::FromInts({3, 3}, {2});
    LayerSaved s1, s2;
    const StepContext late{.step = 10, .training = false};
    auto y1 = branch.Forward(late, x, lengths, Tensor(), Tensor(), &s1);
    auto y2 = post.Forward(late, x, lengths, Tensor(), Tensor(), &s2);
    ASSERT_TRUE(y1.ok() && y2.ok());
    EXPECT_LT(RelativeError(*y1, *y2, 1.0), 1e-12) << BranchNormShape_Name(shape);
    const StepContext early{.step = 2, .training = false};
    y1 = branch.Forward(early, x, lengths, Tensor(), Tensor(), &s1);
    y2 = post.Forward(early, x, lengths, Tensor(), Tensor(), &s2);
    ASSERT_TRUE(y1.ok() && y2.ok());
    EXPECT_GT(RelativeError(*y1, *y2, 1.0), 1e-3) << BranchNormShape_Name(shape);
  }
}

}  // namespace
}  // namespace pipetrain
