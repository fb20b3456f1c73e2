// One Transformer layer with explicit saved activations:
//   encoder layer:       self-attention → FFN
//   decoder layer:       causal self-attention → cross-attention → FFN
//   decoder-only layer:  causal self-attention → FFN
// each sub-layer joined to the residual stream by a ResidualJoin of the
// layer's normalisation kind.
//
// Backward is split (DESIGN.md decision 1): BackwardInput returns the input
// gradient and records what BackwardWeight needs to accumulate the weight
// gradients, so a zero-bubble schedule can run the two at different times.
#ifndef PIPETRAIN_MODELS_TRANSFORMER_LAYER_H_
#define PIPETRAIN_MODELS_TRANSFORMER_LAYER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "models/attention_block.h"
#include "models/ffn_block.h"
#include "models/residual_join.h"

namespace pipetrain {

struct LayerConfig {
  int64_t d_model = 0;
  int64_t ffn_dim = 0;
  int heads = 1;
  ops::ActivationKind activation = ops::ActivationKind::kGelu;
  ResidualNorm norm = POST_LN;
  double alpha = 1.0;  // residual scale (DeepNorm, FoundationLN, UpscaleLN)
  double beta = 1.0;   // DeepNorm init gain of V, O, FFN1, FFN2
  BranchNorm branch;
  double attention_dropout = 0.0;
  double activation_dropout = 0.0;
  double residual_dropout = 0.0;
  double eps = 1e-5;
  bool causal = false;  // decoder self-attention
  bool cross = false;   // has cross-attention over the encoder output
  int index = 0;        // global layer index: keys the dropout streams
};

struct LayerSaved {
  JoinSaved self_join;
  AttentionSaved self_attn;
  JoinSaved cross_join;
  AttentionSaved cross_attn;
  JoinSaved ffn_join;
  FfnSaved ffn;
};

class TransformerLayer {
 public:
  TransformerLayer(ParameterStore& store, const std::string& prefix, const LayerConfig& config);

  // x: [B, T, d]. self_lengths: i32 [B] of valid positions of x (padding keys
  // are masked in non-causal self-attention). memory / memory_lengths: the
  // encoder output and source lengths, for layers with cross-attention.
  absl::StatusOr<Tensor> Forward(const StepContext& ctx, const Tensor& x,
                                 const Tensor& self_lengths, const Tensor& memory,
                                 const Tensor& memory_lengths, LayerSaved* saved) const;
  // Returns dx; adds the memory gradient into *dmemory for cross-attention layers.
  absl::StatusOr<Tensor> BackwardInput(const StepContext& ctx, LayerSaved* saved, const Tensor& dy,
                                       Tensor* dmemory) const;
  absl::Status BackwardWeight(LayerSaved* saved) const;

  const LayerConfig& config() const { return config_; }

 private:
  LayerConfig config_;
  ResidualJoin self_join_;
  AttentionBlock self_attn_;
  std::unique_ptr<ResidualJoin> cross_join_;
  std::unique_ptr<AttentionBlock> cross_attn_;
  ResidualJoin ffn_join_;
  FfnBlock ffn_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_TRANSFORMER_LAYER_H_
