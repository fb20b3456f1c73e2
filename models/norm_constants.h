// Residual-scale (α) and init-gain (β) constants of the normalisation kinds,
// derived from depth as the DeepNet, FoundationLN and UpscaleLN papers give
// them (formulas in docs/normalization.md), unless the spec sets them.
#ifndef PIPETRAIN_MODELS_NORM_CONSTANTS_H_
#define PIPETRAIN_MODELS_NORM_CONSTANTS_H_

#include <string>

#include "proto/model_spec.pb.h"

namespace pipetrain {

struct StackConstants {
  double alpha = 1.0;  // residual scale: LN(α·x + F(x))
  double beta = 1.0;   // xavier-normal gain of V, O, FFN1, FFN2
};

struct NormConstants {
  StackConstants encoder;
  StackConstants decoder;
};

// DeepNorm: encoder-decoder with N encoder and M decoder layers:
//   encoder α = 0.81·(N⁴M)^(1/16), β = 0.87·(N⁴M)^(−1/16);
//   decoder α = (3M)^(1/4),        β = (12M)^(−1/4).
// One stack of N layers (encoder-only or decoder-only): α = (2N)^(1/4), β = (8N)^(−1/4).
NormConstants DeepNormConstants(int encoder_layers, int decoder_layers);

// The constants a layer of `norm` in this spec uses: DeepNorm's from depth,
// UpscaleLN's α = (2N)^(1/4) with N the stack's depth, FoundationLN's α = 0.974;
// spec fields (encoder_alpha, …) win when set. Norms without α get α = β = 1.
NormConstants ResolveNormConstants(const ModelSpec& spec, ResidualNorm norm);

// One line saying which norm every layer uses and the constants it computes
// with, for the start-of-run log and `pipetrain ckpt inspect`, so a run's α,
// β and BranchNorm schedule can be read without redoing the formulas. Norms
// are listed in the order the layers first use them (encoder, then decoder),
// each with the stacks that use it; a stack only partly covered (by
// norm_override) names its 0-based layer ranges. DEEPNORM gives α and β,
// FOUNDATION_LN and UPSCALE_LN α, BRANCHNORM its shape and schedule; "(set)"
// marks a value the spec sets instead of the derived one. Numbers have 6
// significant digits. E.g.
//   DEEPNORM encoder alpha=1.41794 beta=0.496989, decoder alpha=2.05977 beta=0.343295
//   DEEPNORM encoder[0-5] alpha=1.68622 beta=0.417916; POST_LN encoder[6-11], decoder
//   BRANCHNORM encoder, decoder shape=LINEAR_SCALE start_scale=0.1 max_norm_step=4000
std::string DescribeNormConstants(const ModelSpec& spec);

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_NORM_CONSTANTS_H_
