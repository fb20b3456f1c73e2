// The assembled model: whole-loss gradient check in fp64, init statistics,
// and the three model kinds.
#include "models/transformer_model.h"

#include <algorithm>
#include <cmath>

#include "core/data/collate.h"
#include "core/data/synthetic_task.h"
#include "gtest/gtest.h"
#include "tests/testing/grad_check.h"

namespace pipetrain {
namespace {

using testing::NumericGradient;
using testing::RandomTensor;
using testing::RelativeError;

ModelSpec SmallSpec(ModelKind kind, ResidualNorm norm) {
  ModelSpec spec;
  spec.set_kind(kind);
  spec.set_vocab_size(11);
  spec.set_d_model(8);
  spec.set_ffn_dim(12);
  spec.set_heads(2);
  spec.set_encoder_layers(kind == DECODER_ONLY ? 0 : 2);
  spec.set_decoder_layers(kind == ENCODER_ONLY ? 0 : 2);
  spec.set_activation(GELU);
  spec.set_attention_dropout(0.1f);
  spec.set_activation_dropout(0.1f);
  spec.set_residual_dropout(0.1f);
  spec.set_label_smoothing(0.1f);
  spec.set_max_positions(64);
  spec.set_norm(norm);
  spec.set_layer_norm_eps(1e-5f);
  return spec;
}

Batch SmallBatch(ModelKind kind) {
  SyntheticData task;
  task.set_min_length(2);
  task.set_max_length(4);
  std::vector<SentencePair> pairs;
  for (int i = 0; i < 3; ++i) pairs.push_back(SyntheticPair(task, 11, 1, 0, i));
  auto batch = Collate(kind, pairs);
  EXPECT_TRUE(batch.ok()) << batch.status();
  return *batch;
}

struct ModelCase {
  ModelKind kind;
  ResidualNorm norm;
  bool untied;
};

class ModelGradientTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelGradientTest, LossGradientMatchesFiniteDifferences) {
  const ModelCase& c = GetParam();
  ModelSpec spec = SmallSpec(c.kind, c.norm);
  if (c.untied) spec.set_tied_embeddings(false);
  auto model_or = TransformerModel::Create(spec, DType::kF64, 3);
  ASSERT_TRUE(model_or.ok()) << model_or.status();
  TransformerModel& model = **model_or;
  ParameterStore& store = model.params();
  Tensor noise = RandomTensor(store.flat_params().shape(), 8, 0.05);
  for (int64_t i = 0; i < noise.numel(); ++i) {
    store.flat_params().data<double>()[i] += noise.data<double>()[i];
  }
  const Batch batch = SmallBatch(c.kind);
  const StepContext ctx{.seed = 2, .step = 1, .microbatch = 0, .training = true};
  const double scale = 1.0 / batch.LabelTokens();

  auto loss = [&]() {
    ModelSaved saved;
    auto stats = model.Forward(ctx, batch, &saved);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats->loss_sum * scale;
  };
  ModelSaved saved;
  auto stats = model.Forward(ctx, batch, &saved);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->tokens, batch.LabelTokens());
  store.ZeroGrads();
  ASSERT_TRUE(model.Backward(ctx, batch, &saved, scale).ok());
  Tensor analytic = store.flat_grads().Clone();
  Tensor numeric = NumericGradient(loss, store.flat_params());
  EXPECT_LT(RelativeError(analytic, numeric), 1e-6);
  // Parameter by parameter, so a failure names the culprit. The floor is a
  // small fraction of the largest gradient: the key bias, for one, has an
  // exactly zero gradient (softmax ignores a shift shared by a whole row), and
  // its finite differences are pure rounding noise.
  double largest = 0;
  for (int64_t i = 0; i < numeric.numel(); ++i) {
    largest = std::max(largest, std::abs(numeric.At(i)));
  }
  for (const ParameterInfo& info : store.infos()) {
    const Shape flat{NumElements(info.shape)};
    EXPECT_LT(RelativeError(analytic.View(info.offset, flat), numeric.View(info.offset, flat),
                            1e-3 * largest),
              1e-5)
        << info.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, ModelGradientTest,
                         ::testing::Values(ModelCase{ENCODER_DECODER, DEEPNORM, false},
                                           ModelCase{ENCODER_DECODER, PRE_LN, true},
                                           ModelCase{DECODER_ONLY, FOUNDATION_LN, false},
                                           ModelCase{ENCODER_ONLY, UPSCALE_LN, false}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) {
                           return ModelKind_Name(info.param.kind) + "_" +
                                  ResidualNorm_Name(info.param.norm) +
                                  (info.param.untied ? "_Untied" : "");
                         });

double StdDev(const Tensor& t) {
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    sum += t.At(i);
    sq += t.At(i) * t.At(i);
  }
  const double mean = sum / t.numel();
  return std::sqrt(sq / t.numel() - mean * mean);
}

TEST(ModelInitTest, DeepNormStatisticsFollowTheRules) {
  ModelSpec spec = SmallSpec(ENCODER_DECODER, DEEPNORM);
  spec.set_vocab_size(1000);
  spec.set_d_model(256);
  spec.set_ffn_dim(512);
  spec.set_heads(4);
  spec.set_encoder_layers(6);
  spec.set_decoder_layers(6);
  auto model = TransformerModel::Create(spec, DType::kF32, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  // β from the DeepNet formulas for 6+6 layers (computed independently).
  const double enc_beta = 0.49698924077132345, dec_beta = 0.34329452398451965;
  const double xavier_sq = std::sqrt(2.0 / (256 + 256));
  const double xavier_ffn = std::sqrt(2.0 / (256 + 512));
  const ParameterStore& store = (*model)->params();
  int checked = 0;
  for (const ParameterInfo& info : store.infos()) {
    const Tensor p = store.flat_params().View(info.offset, info.shape);
    const std::string& n = info.name;
    const bool encoder = n.rfind("encoder.", 0) == 0;
    const double beta = encoder ? enc_beta : dec_beta;
    double expected = -1;
    if (n == "embed.weight") {
      expected = 1.0 / 16;  // d^-1/2
    } else if (n.find(".q.weight") != std::string::npos ||
               n.find(".k.weight") != std::string::npos) {
      expected = xavier_sq;  // gain 1
    } else if (n.find(".v.weight") != std::string::npos ||
               n.find(".o.weight") != std::string::npos) {
      expected = beta * xavier_sq;
    } else if (n.find(".fc1.weight") != std::string::npos ||
               n.find(".fc2.weight") != std::string::npos) {
      expected = beta * xavier_ffn;
    }
    if (expected > 0) {
      EXPECT_NEAR(StdDev(p), expected, 0.03 * expected) << n;
      ++checked;
    } else if (n.find(".gamma") != std::string::npos) {
      EXPECT_EQ(p.At(0), 1.0) << n;
      EXPECT_EQ(StdDev(p), 0.0) << n;
    } else {
      EXPECT_EQ(StdDev(p), 0.0) << n;  // biases and LN betas start at zero
      EXPECT_EQ(p.At(0), 0.0) << n;
    }
  }
  // embedding + 6 encoder layers × 6 matrices + 6 decoder layers × 10
  EXPECT_EQ(checked, 1 + 6 * 6 + 6 * 10);
}

TEST(ModelInitTest, SameSeedSameParametersOtherSeedOther) {
  const ModelSpec spec = SmallSpec(ENCODER_DECODER, POST_LN);
  auto a = TransformerModel::Create(spec, DType::kF32, 5);
  auto b = TransformerModel::Create(spec, DType::kF32, 5);
  auto c = TransformerModel::Create(spec, DType::kF32, 6);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(ParamsDigest((*a)->params()), ParamsDigest((*b)->params()));
  EXPECT_NE(ParamsDigest((*a)->params()), ParamsDigest((*c)->params()));
}

TEST(ModelTest, PreNormStacksGetAFinalLayerNorm) {
  auto names = [](ResidualNorm norm) {
    auto model = TransformerModel::Create(SmallSpec(ENCODER_DECODER, norm), DType::kF32, 1);
    EXPECT_TRUE(model.ok());
    std::string all;
    for (const ParameterInfo& info : (*model)->params().infos()) all += info.name + " ";
    return all;
  };
  for (ResidualNorm norm : {PRE_LN, NORMFORMER, SUBLN}) {
    EXPECT_NE(names(norm).find("encoder.final_ln.gamma"), std::string::npos);
    EXPECT_NE(names(norm).find("decoder.final_ln.gamma"), std::string::npos);
  }
  for (ResidualNorm norm : {POST_LN, DEEPNORM, BRANCHNORM}) {
    EXPECT_EQ(names(norm).find("final_ln"), std::string::npos);
  }
}

}  // namespace
}  // namespace pipetrain
