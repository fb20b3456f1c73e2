// The whole model assembled from a ModelSpec: shared embeddings (source,
// target and, when tied, the output projection), the encoder and decoder
// stacks with each layer's normalisation, final LNs for pre-norm stacks, and
// the label-smoothed loss. All parameters live in one ParameterStore.
#ifndef PIPETRAIN_MODELS_TRANSFORMER_MODEL_H_
#define PIPETRAIN_MODELS_TRANSFORMER_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/batch.h"
#include "core/ops/cross_entropy.h"
#include "models/parameter_store.h"
#include "models/transformer_layer.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

// Activations of one micro-batch kept between forward and backward.
struct ModelSaved {
  std::vector<LayerSaved> encoder, decoder;
  Tensor encoder_top, decoder_top;  // inputs of the final LNs
  ops::LayerNormSaved encoder_final_ln, decoder_final_ln;
  Tensor memory;  // encoder output
  Tensor hidden;  // output-projection input [N, d]
  Tensor logits;  // [N, V]
  Tensor labels;  // [N]
  ops::CrossEntropySaved loss;
};

class TransformerModel {
 public:
  // Builds the layers and registers, allocates and initialises the parameters
  // (keyed by `seed`). The spec must be validated and have defaults applied.
  static absl::StatusOr<std::unique_ptr<TransformerModel>> Create(const ModelSpec& spec,
                                                                  DType dtype, uint64_t seed);

  // Forward pass; returns the loss sums of the batch.
  absl::StatusOr<ops::CrossEntropyStats> Forward(const StepContext& ctx, const Batch& batch,
                                                 ModelSaved* saved) const;
  // Backward pass of d(grad_scale · loss_sum); parameter gradients accumulate.
  absl::Status Backward(const StepContext& ctx, const Batch& batch, ModelSaved* saved,
                        double grad_scale) const;

  ParameterStore& params() { return *store_; }
  const ParameterStore& params() const { return *store_; }
  const ModelSpec& spec() const { return spec_; }
  const std::vector<std::unique_ptr<TransformerLayer>>& encoder_layers() const { return encoder_; }
  const std::vector<std::unique_ptr<TransformerLayer>>& decoder_layers() const { return decoder_; }

 private:
  TransformerModel(const ModelSpec& spec, DType dtype);
  absl::Status Build();

  absl::StatusOr<Tensor> Embed(const StepContext& ctx, const Tensor& ids, int site) const;
  absl::Status EmbedBackward(const StepContext& ctx, const Tensor& ids, int site,
                             const Tensor& dy) const;

  ModelSpec spec_;
  std::unique_ptr<ParameterStore> store_;
  ParamId embedding_ = -1;
  ParamId output_ = -1;  // == embedding_ when tied
  std::vector<std::unique_ptr<TransformerLayer>> encoder_, decoder_;
  ParamId enc_final_gamma_ = -1, enc_final_beta_ = -1;
  ParamId dec_final_gamma_ = -1, dec_final_beta_ = -1;
  double embed_scale_ = 1.0;
  double eps_ = 1e-5;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_TRANSFORMER_MODEL_H_
