// ModelStage: a contiguous slice of the model's layers with the parameters it
// owns — the unit a pipeline stage (or one interleaved chunk of a rank)
// computes. The whole model is the stage holding every layer.
//
// Layers are numbered globally: encoder layers 0..N−1, then decoder layers
// N..N+M−1. A stage holds [first, last). Besides its layers it holds:
//   the embedding, when it needs it: for the source (it holds layer 0 of an
//     encoder), for the target (it holds decoder layer 0), or as the tied output
//     projection (it holds the last layer). Each copy has its own gradient per use;
//     the copies are summed across stages in a fixed order (see EmbeddingUse);
//   the encoder's / decoder's final LN, with the stack's last layer;
//   the output projection and the loss, with the last layer.
//
// What crosses a stage boundary for a micro-batch is a StageBoundary: the
// residual stream of the stack being computed, and, once the encoder is done,
// its output (the decoder's cross-attention memory), passed on to every later
// stage. Their gradients travel back the same way; the memory gradient is summed
// on the way (DESIGN.md decision 5).
#ifndef PIPETRAIN_MODELS_MODEL_STAGE_H_
#define PIPETRAIN_MODELS_MODEL_STAGE_H_

#include <array>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/batch.h"
#include "core/ops/cross_entropy.h"
#include "core/optim/grad_clip.h"
#include "models/parameter_store.h"
#include "models/transformer_layer.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

struct StageBoundary {
  Tensor hidden;  // [B, T, d] residual stream of the current stack; undefined when the
                  // encoder has just finished and the decoder has not begun
  Tensor memory;  // [B, S, d] encoder output, once the encoder is done
};

// The three ways the shared embedding is used; its gradient is the sum of
// the three partial gradients, added in this order everywhere.
enum EmbeddingUse : int { kOutputUse = 0, kTargetUse = 1, kSourceUse = 2 };

// Activations of one micro-batch between forward and backward.
struct StageSaved {
  std::vector<LayerSaved> layers;
  // For layers under activation checkpointing: the layer's input (its
  // LayerSaved is dropped after forward and rebuilt in backward), and the
  // memory the decoder layers read.
  std::vector<Tensor> layer_inputs;
  Tensor memory;
  Tensor encoder_top, decoder_top;  // final-LN inputs
  ops::LayerNormSaved encoder_final_ln, decoder_final_ln;
  Tensor hidden;  // output-projection input [N, d]
  Tensor logits;  // [N, V]
  Tensor labels;  // [N]
  ops::CrossEntropySaved loss;
  ops::CrossEntropyStats stats;
  // Recorded by BackwardInput for BackwardWeight.
  Tensor d_logits;
  Tensor d_decoder_top, d_encoder_top;
  Tensor d_src_embedded, d_tgt_embedded;
};

class ModelStage {
 public:
  // The spec must be validated with defaults applied. Parameters are allocated
  // and initialised from `seed` (by name, so any slicing gives the same values).
  // `device` kCuda keeps parameters, gradients and activations on the GPU
  // (f32 only, for now).
  static absl::StatusOr<std::unique_ptr<ModelStage>> Create(const ModelSpec& spec, DType dtype,
                                                            uint64_t seed, int first_layer,
                                                            int last_layer,
                                                            Device device = Device::kCpu);

  // Forward of one micro-batch. `input` is what the previous stage sent (ignored
  // by a stage holding layer 0). A stage with the head returns an empty boundary
  // and leaves the loss in saved->stats (on a device: its per-row sums, still
  // on the device; ops::ReadCrossEntropySums reads them).
  absl::StatusOr<StageBoundary> Forward(const StepContext& ctx, const Batch& batch,
                                        const StageBoundary& input, StageSaved* saved) const;
  // Input gradient of d(grad_scale · loss_sum): from `grad_output` (what the
  // next stage sent back; ignored by the head stage) to the gradient of `input`.
  absl::StatusOr<StageBoundary> BackwardInput(const StepContext& ctx, const Batch& batch,
                                              const StageBoundary& grad_output, StageSaved* saved,
                                              double grad_scale) const;
  // Accumulates this micro-batch's parameter gradients (embedding uses into
  // their own partial buffers). Frees the saved activations.
  // With `on_final` (the step's last micro-batch), each part of the flat
  // gradient buffer is handed to it as soon as its accumulation is done: a
  // layer's span right after that layer, then the final LNs' and the untied
  // output projection's. (The embedding's slot is not: its gradient is set
  // from the partials after the step, see SetEmbeddingGrad.)
  using FinalGradients = std::function<absl::Status(const FlatSegment&)>;
  absl::Status BackwardWeight(const StepContext& ctx, const Batch& batch, StageSaved* saved,
                              const FinalGradients& on_final = nullptr) const;

  // Activation checkpointing: layers whose flag is set keep only their input
  // in forward and recompute their activations in backward (dropout replays
  // from its keys, so the result is bitwise the same). One flag per layer of
  // the stage; empty means none.
  absl::Status SetRecompute(std::vector<bool> per_layer);
  // For a stage that only runs forward (decoding's encoder): Forward keeps
  // nothing for backward, not even layer inputs, and Backward is refused.
  void SetForwardOnly() { forward_only_ = true; }

  // Zeroes every gradient, the embedding's partial ones included.
  void ZeroGrads();
  // The partial gradient of one embedding use; undefined when this stage has
  // no such use.
  const Tensor& embedding_partial(EmbeddingUse use) const { return embedding_partials_[use]; }
  bool has_embedding() const { return embedding_ >= 0; }
  // Writes the embedding gradient from partial sums of every use, added in
  // EmbeddingUse order: `partials[u]` may be undefined (no such use anywhere).
  absl::Status SetEmbeddingGrad(const std::array<Tensor, 3>& partials);

  // Per-parameter sums of squares of the gradients, in registration order,
  // skipping the embedding when `skip_embedding` (it is counted by one owner
  // only). Summed in global layer order they give the global norm, the same
  // whatever the slicing.
  // Computed on the store's device and read by the host once.
  absl::StatusOr<std::vector<double>> GradSquares(bool skip_embedding) const;
  // The same list as f64 [n] left on the store's device (on the host for a
  // CPU store), for a caller that reads several chunks' lists at once.
  absl::StatusOr<Tensor> GradSquaresOnDevice(bool skip_embedding) const;

  // Residual-stream statistics (train.layer_stats_interval), measured only
  // between these two calls, so other steps pay nothing: Forward adds each
  // layer's sum of squares of its output hidden states (all positions, pad
  // included) to a per-layer f64 accumulator on the store's device.
  void StartResidualStats();
  // Per layer of the stage, in order: {sum of squares, elements} (the sums
  // read from the device in one copy); stops measuring.
  absl::StatusOr<std::vector<std::pair<double, double>>> TakeResidualStats();

  // Each parameter's span of the flat buffers, in registration order.
  std::vector<FlatSegment> ParameterSegments(bool skip_embedding) const;

  ParameterStore& params() { return *store_; }
  const ParameterStore& params() const { return *store_; }
  const ModelSpec& spec() const { return spec_; }
  int first_layer() const { return first_; }
  int last_layer() const { return last_; }
  bool has_head() const { return has_head_; }
  bool holds_source_embedding() const { return src_embed_; }
  bool holds_target_embedding() const { return tgt_embed_; }
  ParamId embedding_id() const { return embedding_; }
  // Tensors shaped like the boundary this stage receives for `batch`, and like
  // the one it sends (undefined entries are not sent).
  StageBoundary InputShapes(const Batch& batch) const { return ShapesAt(first_, batch); }
  StageBoundary OutputShapes(const Batch& batch) const { return ShapesAt(last_, batch); }

 private:
  ModelStage(const ModelSpec& spec, DType dtype, int first, int last, Device device);
  absl::Status Build();
  // Forward of global layer `layer` of this stage.
  absl::StatusOr<Tensor> LayerForward(const StepContext& ctx, const Batch& batch, int layer,
                                      const Tensor& x, const Tensor& memory,
                                      LayerSaved* saved) const;
  // What crosses into global layer `layer` (nothing at 0 or past the last layer).
  StageBoundary ShapesAt(int layer, const Batch& batch) const;
  int encoder_layers() const { return spec_.encoder_layers(); }

  ModelSpec spec_;
  std::unique_ptr<ParameterStore> store_;
  int first_, last_;
  bool src_embed_ = false, tgt_embed_ = false, has_head_ = false;
  ParamId embedding_ = -1;
  ParamId output_ = -1;                                    // == embedding_ when tied
  std::vector<std::unique_ptr<TransformerLayer>> layers_;  // layers [first_, last_)
  // The parameters each layer registered: ids [first, last).
  std::vector<std::pair<ParamId, ParamId>> layer_params_;
  ParamId enc_final_gamma_ = -1, enc_final_beta_ = -1;
  ParamId dec_final_gamma_ = -1, dec_final_beta_ = -1;
  std::array<Tensor, 3> embedding_partials_;
  std::vector<bool> recompute_;
  bool forward_only_ = false;
  // Defined only while residual statistics are measured: f64 [layers] on
  // the store's device, and the element counts (host).
  mutable Tensor residual_sums_;
  mutable std::vector<double> residual_counts_;
  double embed_scale_ = 1.0;
  double eps_ = 1e-5;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_MODEL_STAGE_H_
