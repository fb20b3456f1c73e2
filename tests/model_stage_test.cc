// Slicing the model into stages changes nothing: running the stages one after
// another, passing the boundary tensors by hand and summing the embedding's
// partial gradients across stages, gives bitwise the whole model's loss and
// gradients. This is the arithmetic half of the pipeline's bitwise promise;
// the other half (moving the same tensors between ranks) is the executor's.
#include "models/model_stage.h"

#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "core/data/collate.h"
#include "core/data/synthetic_task.h"
#include "gtest/gtest.h"
#include "models/transformer_model.h"

namespace pipetrain {
namespace {

ModelSpec Spec(ModelKind kind, ResidualNorm norm) {
  ModelSpec spec;
  spec.set_kind(kind);
  spec.set_vocab_size(13);
  spec.set_d_model(8);
  spec.set_ffn_dim(16);
  spec.set_heads(2);
  spec.set_encoder_layers(kind == DECODER_ONLY ? 0 : 3);
  spec.set_decoder_layers(kind == ENCODER_ONLY ? 0 : 3);
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

std::vector<Batch> Microbatches(ModelKind kind) {
  SyntheticData task;
  task.set_min_length(2);
  task.set_max_length(6);
  std::vector<SentencePair> pairs;
  for (int i = 0; i < 6; ++i) pairs.push_back(SyntheticPair(task, 13, 3, 0, i));
  auto batches = CollateMicrobatches(kind, pairs, 3);
  EXPECT_TRUE(batches.ok()) << batches.status();
  return *batches;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

struct SliceCase {
  ModelKind kind;
  ResidualNorm norm;
  std::vector<int> cuts;  // stage boundaries inside [0, layers)
  // Activation checkpointing on every other layer: recomputation replays
  // dropout from its keys, so the result must not change by a bit.
  bool recompute = false;
};

class StageSliceTest : public ::testing::TestWithParam<SliceCase> {};

TEST_P(StageSliceTest, StagesInSequenceEqualTheWholeModelBitwise) {
  const SliceCase& c = GetParam();
  const ModelSpec spec = Spec(c.kind, c.norm);
  const int total = spec.encoder_layers() + spec.decoder_layers();
  const std::vector<Batch> batches = Microbatches(c.kind);
  int64_t tokens = 0;
  for (const Batch& b : batches) tokens += b.LabelTokens();
  const double scale = 1.0 / tokens;

  auto whole = TransformerModel::Create(spec, DType::kF32, 7);
  ASSERT_TRUE(whole.ok()) << whole.status();
  double whole_loss = 0;
  for (int m = 0; m < 3; ++m) {
    const StepContext ctx{.seed = 5, .step = 2, .microbatch = m, .training = true};
    ModelSaved saved;
    auto stats = (*whole)->Forward(ctx, batches[m], &saved);
    ASSERT_TRUE(stats.ok()) << stats.status();
    whole_loss += stats->loss_sum;
    ASSERT_TRUE((*whole)->Backward(ctx, batches[m], &saved, scale).ok());
  }

  std::vector<int> bounds = {0};
  bounds.insert(bounds.end(), c.cuts.begin(), c.cuts.end());
  bounds.push_back(total);
  std::vector<std::unique_ptr<ModelStage>> stages;
  for (size_t s = 0; s + 1 < bounds.size(); ++s) {
    auto stage = ModelStage::Create(spec, DType::kF32, 7, bounds[s], bounds[s + 1]);
    ASSERT_TRUE(stage.ok()) << stage.status();
    if (c.recompute) {
      std::vector<bool> flags;
      for (int g = bounds[s]; g < bounds[s + 1]; ++g) flags.push_back(g % 2 == 0);
      ASSERT_TRUE((*stage)->SetRecompute(flags).ok());
    }
    stages.push_back(*std::move(stage));
  }
  double sliced_loss = 0;
  for (int m = 0; m < 3; ++m) {
    const StepContext ctx{.seed = 5, .step = 2, .microbatch = m, .training = true};
    std::vector<StageSaved> saved(stages.size());
    StageBoundary boundary;
    for (size_t s = 0; s < stages.size(); ++s) {
      // What a receiver allocates must fit what the sender produces.
      const StageBoundary shapes = stages[s]->InputShapes(batches[m]);
      EXPECT_EQ(shapes.hidden.defined(), boundary.hidden.defined()) << "stage " << s;
      EXPECT_EQ(shapes.memory.defined(), boundary.memory.defined()) << "stage " << s;
      if (shapes.hidden.defined()) {
        EXPECT_EQ(shapes.hidden.shape(), boundary.hidden.shape());
      }
      if (shapes.memory.defined()) {
        EXPECT_EQ(shapes.memory.shape(), boundary.memory.shape());
      }
      auto out = stages[s]->Forward(ctx, batches[m], boundary, &saved[s]);
      ASSERT_TRUE(out.ok()) << out.status();
      boundary = *out;
    }
    sliced_loss += saved.back().stats.loss_sum;
    StageBoundary grad;
    for (size_t s = stages.size(); s-- > 0;) {
      auto g = stages[s]->BackwardInput(ctx, batches[m], grad, &saved[s], scale);
      ASSERT_TRUE(g.ok()) << g.status();
      grad = *g;
      ASSERT_TRUE(stages[s]->BackwardWeight(ctx, batches[m], &saved[s]).ok());
    }
    EXPECT_FALSE(grad.hidden.defined());
    EXPECT_FALSE(grad.memory.defined());
  }
  EXPECT_EQ(sliced_loss, whole_loss);

  // Embedding sync: each use's partial comes from the one stage that has it.
  std::array<Tensor, 3> partials;
  for (const auto& stage : stages) {
    for (int use = 0; use < 3; ++use) {
      const Tensor& p = stage->embedding_partial(static_cast<EmbeddingUse>(use));
      if (p.defined()) {
        EXPECT_FALSE(partials[use].defined()) << "two stages own embedding use " << use;
        partials[use] = p;
      }
    }
  }
  for (auto& stage : stages) ASSERT_TRUE(stage->SetEmbeddingGrad(partials).ok());

  // Every parameter, by name, bitwise; and the stages hold each exactly once
  // (the embedding excepted: every owner holds the same synced copy).
  const ParameterStore& ref = (*whole)->params();
  std::vector<double> squares_whole = *(*whole)->stage().GradSquares(false);
  std::vector<double> squares_sliced;
  int found = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    const ParameterStore& store = stages[s]->params();
    const absl::StatusOr<std::vector<double>> squares = stages[s]->GradSquares(s != 0);
    ASSERT_TRUE(squares.ok()) << squares.status();
    for (const double q : *squares) {
      squares_sliced.push_back(q);
    }
    for (ParamId id = 0; id < static_cast<ParamId>(store.infos().size()); ++id) {
      const std::string& name = store.infos()[id].name;
      bool matched = false;
      for (ParamId r = 0; r < static_cast<ParamId>(ref.infos().size()); ++r) {
        if (ref.infos()[r].name != name) continue;
        matched = true;
        EXPECT_TRUE(SameBytes(store.param(id), ref.param(r))) << name << " value";
        EXPECT_TRUE(SameBytes(store.grad(id), ref.grad(r))) << name << " gradient";
      }
      EXPECT_TRUE(matched) << name;
      if (name != "embed.weight") ++found;
    }
  }
  // Every model kind here has an embedding, counted once above.
  EXPECT_EQ(found + 1, static_cast<int>(ref.infos().size()));
  EXPECT_EQ(squares_sliced, squares_whole);
}

INSTANTIATE_TEST_SUITE_P(
    Slices, StageSliceTest,
    ::testing::Values(
        // Cut inside the encoder, at the encoder/decoder boundary, inside the decoder.
        SliceCase{ENCODER_DECODER, DEEPNORM, {1, 3, 5}},
        // A stage holding the boundary (layers 2..3 = last encoder + first decoder).
        SliceCase{ENCODER_DECODER, PRE_LN, {2, 4}},
        SliceCase{ENCODER_DECODER, NORMFORMER, {1, 2, 3, 4, 5}},
        SliceCase{DECODER_ONLY, SUBLN, {1, 2}}, SliceCase{ENCODER_ONLY, POST_LN, {2}},
        SliceCase{ENCODER_DECODER, DEEPNORM, {2, 4}, /*recompute=*/true},
        SliceCase{DECODER_ONLY, NORMFORMER, {}, /*recompute=*/true}),
    [](const ::testing::TestParamInfo<SliceCase>& info) {
      std::string name = ModelKind_Name(info.param.kind) + "_" + ResidualNorm_Name(info.param.norm);
      for (int cut : info.param.cuts) name += "_" + std::to_string(cut);
      return name + (info.param.recompute ? "_Recompute" : "");
    });

// Decoding's encoder and validation's model run forward only: the same
// output and loss to the bit, no layer activations or inputs kept, and a
// backward that is refused instead of reading what was not kept.
TEST(ModelStageTest, ForwardOnlyKeepsNothingAndRefusesBackward) {
  const ModelSpec spec = Spec(ENCODER_DECODER, DEEPNORM);
  const int total = spec.encoder_layers() + spec.decoder_layers();
  const Batch batch = Microbatches(ENCODER_DECODER)[0];
  const StepContext ctx{.seed = 5, .step = 2, .microbatch = 0, .training = false};
  auto kept = ModelStage::Create(spec, DType::kF32, 7, 0, total);
  auto forward_only = ModelStage::Create(spec, DType::kF32, 7, 0, total);
  ASSERT_TRUE(kept.ok() && forward_only.ok());
  // Forward-only wins over checkpointing flags, which would keep inputs.
  ASSERT_TRUE((*forward_only)->SetRecompute(std::vector<bool>(total, true)).ok());
  (*forward_only)->SetForwardOnly();

  StageSaved kept_saved, lean_saved;
  ASSERT_TRUE((*kept)->Forward(ctx, batch, StageBoundary(), &kept_saved).ok());
  ASSERT_TRUE((*forward_only)->Forward(ctx, batch, StageBoundary(), &lean_saved).ok());
  EXPECT_EQ(lean_saved.stats.loss_sum, kept_saved.stats.loss_sum);
  EXPECT_TRUE(SameBytes(lean_saved.logits, kept_saved.logits));
  EXPECT_TRUE(lean_saved.layer_inputs.empty());
  ASSERT_EQ(lean_saved.layers.size(), kept_saved.layers.size());
  for (size_t i = 0; i < lean_saved.layers.size(); ++i) {
    // The attention probabilities and the FFN's hidden activations are the
    // largest of what a layer keeps for backward.
    EXPECT_TRUE(kept_saved.layers[i].self_attn.attention.probs.defined()) << i;
    EXPECT_TRUE(kept_saved.layers[i].ffn.pre_act.defined()) << i;
    EXPECT_FALSE(lean_saved.layers[i].self_attn.attention.probs.defined()) << i;
    EXPECT_FALSE(lean_saved.layers[i].ffn.pre_act.defined()) << i;
    EXPECT_FALSE(lean_saved.layers[i].self_attn.q.defined()) << i;
  }

  const auto backward =
      (*forward_only)->BackwardInput(ctx, batch, StageBoundary(), &lean_saved, 1.0);
  EXPECT_EQ(backward.status().code(), absl::StatusCode::kFailedPrecondition) << backward.status();
}

TEST(ModelStageTest, RejectsBadRanges) {
  const ModelSpec spec = Spec(ENCODER_DECODER, POST_LN);
  EXPECT_FALSE(ModelStage::Create(spec, DType::kF32, 1, 2, 2).ok());
  EXPECT_FALSE(ModelStage::Create(spec, DType::kF32, 1, -1, 2).ok());
  EXPECT_FALSE(ModelStage::Create(spec, DType::kF32, 1, 4, 7).ok());
  auto stage = ModelStage::Create(spec, DType::kF32, 1, 0, 2);
  ASSERT_TRUE(stage.ok());
  EXPECT_FALSE((*stage)->SetRecompute({true, false, true}).ok());
}

}  // namespace
}  // namespace pipetrain
