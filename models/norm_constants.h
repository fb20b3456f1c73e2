// Residual-scale (α) and init-gain (β) constants of the normalisation kinds,
// derived from depth as the DeepNet, FoundationLN and UpscaleLN papers give
// them (formulas in docs/normalization.md), unless the spec sets them.
#ifndef PIPETRAIN_MODELS_NORM_CONSTANTS_H_
#define PIPETRAIN_MODELS_NORM_CONSTANTS_H_

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

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_NORM_CONSTANTS_H_
