#include "models/norm_constants.h"

#include <cmath>

namespace pipetrain {

NormConstants DeepNormConstants(int encoder_layers, int decoder_layers) {
  NormConstants c;
  const double n = encoder_layers;
  const double m = decoder_layers;
  if (encoder_layers > 0 && decoder_layers > 0) {
    const double depth = std::pow(n, 4) * m;
    c.encoder = {0.81 * std::pow(depth, 1.0 / 16), 0.87 * std::pow(depth, -1.0 / 16)};
    c.decoder = {std::pow(3 * m, 0.25), std::pow(12 * m, -0.25)};
    return c;
  }
  const double one = encoder_layers > 0 ? n : m;
  const StackConstants stack{std::pow(2 * one, 0.25), std::pow(8 * one, -0.25)};
  c.encoder = stack;
  c.decoder = stack;
  return c;
}

NormConstants ResolveNormConstants(const ModelSpec& spec, ResidualNorm norm) {
  NormConstants c;  // α = β = 1
  switch (norm) {
    case DEEPNORM:
      c = DeepNormConstants(spec.encoder_layers(), spec.decoder_layers());
      break;
    case UPSCALE_LN:
      c.encoder.alpha = std::pow(2.0 * spec.encoder_layers(), 0.25);
      c.decoder.alpha = std::pow(2.0 * spec.decoder_layers(), 0.25);
      break;
    case FOUNDATION_LN:
      c.encoder.alpha = 0.974;
      c.decoder.alpha = 0.974;
      break;
    default:
      return c;  // no α or β: spec fields are rejected by validation
  }
  if (spec.has_encoder_alpha()) c.encoder.alpha = spec.encoder_alpha();
  if (spec.has_decoder_alpha()) c.decoder.alpha = spec.decoder_alpha();
  if (norm == DEEPNORM) {
    if (spec.has_encoder_beta()) c.encoder.beta = spec.encoder_beta();
    if (spec.has_decoder_beta()) c.decoder.beta = spec.decoder_beta();
  }
  return c;
}

}  // namespace pipetrain
