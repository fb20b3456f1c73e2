// Position-wise feed-forward block: fc2(dropout(act(fc1(h)))), with the inner
// LN of NORMFORMER and SUBLN (after the activation, before fc2).
#ifndef PIPETRAIN_MODELS_FFN_BLOCK_H_
#define PIPETRAIN_MODELS_FFN_BLOCK_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/ops/activation.h"
#include "core/ops/layer_norm.h"
#include "models/parameter_store.h"
#include "models/step_context.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

struct FfnConfig {
  int64_t d_model = 0;
  int64_t ffn_dim = 0;
  ops::ActivationKind activation = ops::ActivationKind::kGelu;
  ResidualNorm norm = POST_LN;
  double gain = 1.0;     // DeepNorm's β on both matrices
  double dropout = 0.0;  // after the activation
  double eps = 1e-5;
};

struct FfnSaved {
  Tensor h;        // block input
  Tensor pre_act;  // fc1 output
  Tensor act;      // activation output (inner LN input)
  ops::LayerNormSaved inner_ln;
  Tensor fc2_in;  // after the inner LN and dropout
  // Recorded by BackwardInput for BackwardWeight.
  Tensor d_fc2_out, d_inner_ln_out, d_pre_act;
};

class FfnBlock {
 public:
  FfnBlock(ParameterStore& store, const std::string& prefix, const FfnConfig& config);

  absl::StatusOr<Tensor> Forward(const StepContext& ctx, int layer, const Tensor& h,
                                 FfnSaved* saved) const;
  absl::StatusOr<Tensor> BackwardInput(const StepContext& ctx, int layer, FfnSaved* saved,
                                       const Tensor& dout) const;
  absl::Status BackwardWeight(FfnSaved* saved) const;

 private:
  ParameterStore& store_;
  FfnConfig config_;
  ParamId w1_, b1_, w2_, b2_;
  ParamId inner_gamma_ = -1, inner_beta_ = -1;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_FFN_BLOCK_H_
