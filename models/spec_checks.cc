#include "models/spec_checks.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/spec_bounds.h"
#include "core/config/spec_fields.h"

namespace pipetrain {
namespace {

using spec_fields::Covers;
using spec_fields::Depth;
using spec_fields::KindName;
using spec_fields::NormName;
using spec_fields::StackName;

// Norms some layer of `stack` may use: the main norm and every override that
// indexes the stack. Empty when the model has no such stack.
std::set<ResidualNorm> NormsOfStack(const ModelSpec& m, Stack stack) {
  std::set<ResidualNorm> norms;
  if (Depth(m, stack) <= 0) return norms;
  norms.insert(m.norm());
  for (const NormOverride& o : m.norm_override()) {
    if (Covers(o, stack)) norms.insert(o.norm());
  }
  return norms;
}

bool HasAlpha(ResidualNorm n) { return n == DEEPNORM || n == FOUNDATION_LN || n == UPSCALE_LN; }

std::string NormsText(const std::set<ResidualNorm>& norms) {
  std::vector<std::string> names;
  for (ResidualNorm n : norms) names.push_back(NormName(n));
  return absl::StrJoin(names, ", ");
}

void CheckAlphaBeta(const ModelSpec& m, SpecProblems& p) {
  struct Constant {
    const char* field;
    bool set;
    float value;
    Stack stack;
    bool beta;
  };
  const Constant constants[] = {
      {"encoder_alpha", m.has_encoder_alpha(), m.encoder_alpha(), ENCODER, false},
      {"decoder_alpha", m.has_decoder_alpha(), m.decoder_alpha(), DECODER, false},
      {"encoder_beta", m.has_encoder_beta(), m.encoder_beta(), ENCODER, true},
      {"decoder_beta", m.has_decoder_beta(), m.decoder_beta(), DECODER, true},
  };
  for (const Constant& c : constants) {
    if (!c.set) continue;
    const std::set<ResidualNorm> norms = NormsOfStack(m, c.stack);
    const std::string field = absl::StrCat("model.", c.field, "=", c.value);
    if (norms.empty()) {
      p.Add(field, " is set but the model (", KindName(m.kind()), ") has no ", StackName(c.stack),
            " layers; remove it");
      continue;
    }
    const bool used =
        c.beta ? norms.count(DEEPNORM) > 0 : std::any_of(norms.begin(), norms.end(), HasAlpha);
    if (!used) {
      p.Add(field, " is set but no ", StackName(c.stack), " layer uses ",
            c.beta
                ? "DEEPNORM (the only norm with an init gain beta)"
                : "DEEPNORM, FOUNDATION_LN or UPSCALE_LN (the norms with a residual scale alpha)",
            "; its layers use ", NormsText(norms), ". Remove it or change the norm");
    } else if (!(c.value > 0) || !(c.value <= spec_bounds::kMaxNormConstant)) {
      p.Add(field, " must be a finite number > 0 and <= ", spec_bounds::kMaxNormConstant,
            "; leave it unset for the value derived from the depth");
    }
  }
}

void CheckBranchNorm(const ModelSpec& m, SpecProblems& p) {
  std::set<ResidualNorm> all = NormsOfStack(m, ENCODER);
  all.merge(NormsOfStack(m, DECODER));
  const BranchNorm& b = m.branch_norm();
  if (all.count(BRANCHNORM) == 0) {
    if (b.ByteSizeLong() > 0) {
      p.Add("model.branch_norm is set but no layer uses BRANCHNORM (layers use ", NormsText(all),
            "); remove the block, or set norm: BRANCHNORM or a norm_override to it");
    }
    return;
  }
  if (!BranchNormShape_IsValid(b.shape())) {
    p.Add("model.branch_norm.shape=", static_cast<int>(b.shape()),
          " is not a BranchNormShape; use LINEAR_SCALE or NORMALIZED_POWER");
  }
  if (b.max_norm_step() <= 0) {
    p.Add("model.branch_norm.max_norm_step=", b.max_norm_step(),
          " must be > 0 when BRANCHNORM is used: it is the step at which the branch rescaling "
          "ends");
  } else if (b.max_norm_step() > spec_bounds::kMaxSteps) {
    p.Add("model.branch_norm.max_norm_step=", b.max_norm_step(), " is above the limit of ",
          spec_bounds::kMaxSteps, "; choose a step the run can reach");
  }
  if (b.shape() == NORMALIZED_POWER) {
    if (b.start_scale() != 0) {
      p.Add("model.branch_norm.start_scale=", b.start_scale(),
            " has no effect with shape NORMALIZED_POWER (it is a(0) of LINEAR_SCALE); remove it");
    }
  } else if (!(b.start_scale() >= 0 && b.start_scale() <= 1)) {
    p.Add("model.branch_norm.start_scale=", b.start_scale(),
          " must be in [0, 1] (the branch scale a(0) at step 0)");
  }
}

void CheckOverrides(const ModelSpec& m, SpecProblems& p) {
  // Every layer's norm is looked up through all overrides (NormForLayer), so
  // their number multiplies the cost of building a deep model; one line per
  // broken override would also flood the report.
  if (m.norm_override_size() > spec_bounds::kMaxNormOverrides) {
    p.Add("model.norm_override has ", m.norm_override_size(), " entries, above the limit of ",
          spec_bounds::kMaxNormOverrides, "; merge adjacent ranges with the same norm");
    return;
  }
  for (int i = 0; i < m.norm_override_size(); ++i) {
    const NormOverride& o = m.norm_override(i);
    const std::string at = absl::StrCat("model.norm_override[", i, "]");
    if (o.norm() == RESIDUAL_NORM_UNSPECIFIED) {
      p.Add(at, ".norm is not set; name the norm the layers in the range get, e.g. norm: PRE_LN");
    } else if (!ResidualNorm_IsValid(o.norm())) {
      p.Add(at, ".norm=", static_cast<int>(o.norm()), " is not a ResidualNorm");
    }
    if (!Stack_IsValid(o.stack())) {
      p.Add(at, ".stack=", static_cast<int>(o.stack()),
            " is not a Stack; use ENCODER, DECODER, or leave it unset for both");
      continue;
    }
    if (o.first_layer() < 0) p.Add(at, ".first_layer=", o.first_layer(), " must be >= 0");
    if (o.first_layer() > o.last_layer()) {
      p.Add(at, ".first_layer=", o.first_layer(), " is after last_layer=", o.last_layer(),
            "; the range is inclusive, so first_layer <= last_layer");
    }
    for (Stack stack : {ENCODER, DECODER}) {
      if (o.stack() != STACK_UNSPECIFIED && o.stack() != stack) continue;
      const int depth = Depth(m, stack);
      if (depth <= 0) {
        if (o.stack() == stack) {
          p.Add(at, ".stack=", Stack_Name(stack), " but the model (", KindName(m.kind()),
                ") has no ", StackName(stack), " layers; use the stack the model has");
        }
        continue;
      }
      if (o.last_layer() >= depth) {
        p.Add(at, ".last_layer=", o.last_layer(), " is outside the ", StackName(stack), "'s ",
              depth, " layers (valid 0..", depth - 1, ")",
              o.stack() == STACK_UNSPECIFIED
                  ? "; with stack unset the range applies to both stacks, so set stack"
                  : "");
      }
    }
  }
}

}  // namespace

void CheckNormRules(const ModelSpec& m, SpecProblems& p) {
  if (m.norm() == RESIDUAL_NORM_UNSPECIFIED || !ResidualNorm_IsValid(m.norm())) {
    p.Add("model.norm=", NormName(m.norm()),
          " is not a residual norm; set norm: POST_LN, PRE_LN, DEEPNORM, BRANCHNORM, NORMFORMER, "
          "FOUNDATION_LN, UPSCALE_LN or SUBLN");
  }
  CheckAlphaBeta(m, p);
  CheckBranchNorm(m, p);
  CheckOverrides(m, p);
}

void CheckModelNorms(const RunSpec& spec, SpecProblems& problems) {
  CheckNormRules(spec.model(), problems);
}

}  // namespace pipetrain
