#include "models/norm_constants.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/config/spec_loader.h"

namespace pipetrain {
namespace {

// A norm and the layers of each stack that use it.
struct NormUse {
  ResidualNorm norm;
  // Per stack (0 encoder, 1 decoder): inclusive 0-based ranges of layers.
  std::vector<std::pair<int, int>> ranges[2];
};

std::string Number(double value) { return absl::StrFormat("%.6g", value); }

// "encoder", or "encoder[0-5,9]" when the ranges leave out some of its `depth` layers.
std::string StackLayers(const char* stack, const std::vector<std::pair<int, int>>& ranges,
                        int depth) {
  if (ranges.size() == 1 && ranges[0].first == 0 && ranges[0].second == depth - 1) return stack;
  std::vector<std::string> parts;
  for (const auto& [first, last] : ranges) {
    parts.push_back(first == last ? absl::StrCat(first) : absl::StrCat(first, "-", last));
  }
  return absl::StrCat(stack, "[", absl::StrJoin(parts, ","), "]");
}

}  // namespace

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

std::string DescribeNormConstants(const ModelSpec& spec) {
  // Every layer's norm, as the model builds it, in runs of equal norm.
  std::vector<NormUse> uses;
  const int depth[2] = {spec.encoder_layers(), spec.decoder_layers()};
  for (int s = 0; s < 2; ++s) {
    for (int i = 0; i < depth[s]; ++i) {
      const absl::StatusOr<ResidualNorm> norm = NormForLayer(spec, s == 0 ? ENCODER : DECODER, i);
      if (!norm.ok()) return absl::StrCat("norms unknown: ", norm.status().message());
      NormUse* use = nullptr;
      for (NormUse& u : uses) {
        if (u.norm == *norm) use = &u;
      }
      if (use == nullptr) use = &uses.emplace_back(NormUse{.norm = *norm});
      std::vector<std::pair<int, int>>& ranges = use->ranges[s];
      if (!ranges.empty() && ranges.back().second == i - 1) {
        ranges.back().second = i;
      } else {
        ranges.push_back({i, i});
      }
    }
  }
  if (uses.empty()) return "no layers";

  std::vector<std::string> groups;
  for (const NormUse& use : uses) {
    const NormConstants constants = ResolveNormConstants(spec, use.norm);
    const bool has_alpha =
        use.norm == DEEPNORM || use.norm == FOUNDATION_LN || use.norm == UPSCALE_LN;
    const bool has_beta = use.norm == DEEPNORM;
    std::vector<std::string> stacks;
    for (int s = 0; s < 2; ++s) {
      if (use.ranges[s].empty()) continue;
      const bool encoder = s == 0;
      const StackConstants& c = encoder ? constants.encoder : constants.decoder;
      std::string text = StackLayers(encoder ? "encoder" : "decoder", use.ranges[s], depth[s]);
      if (has_alpha) {
        const bool set = encoder ? spec.has_encoder_alpha() : spec.has_decoder_alpha();
        absl::StrAppend(&text, " alpha=", Number(c.alpha), set ? "(set)" : "");
      }
      if (has_beta) {
        const bool set = encoder ? spec.has_encoder_beta() : spec.has_decoder_beta();
        absl::StrAppend(&text, " beta=", Number(c.beta), set ? "(set)" : "");
      }
      stacks.push_back(std::move(text));
    }
    std::string group = absl::StrCat(ResidualNorm_Name(use.norm), " ", absl::StrJoin(stacks, ", "));
    if (use.norm == BRANCHNORM) {
      // What ResidualJoin computes with: any shape but NORMALIZED_POWER scales linearly.
      const BranchNorm& b = spec.branch_norm();
      if (b.shape() == NORMALIZED_POWER) {
        absl::StrAppend(&group, " shape=NORMALIZED_POWER");
      } else {
        absl::StrAppend(&group, " shape=LINEAR_SCALE start_scale=", Number(b.start_scale()));
      }
      absl::StrAppend(&group, " max_norm_step=", b.max_norm_step());
    }
    groups.push_back(std::move(group));
  }
  return absl::StrJoin(groups, "; ");
}

}  // namespace pipetrain
