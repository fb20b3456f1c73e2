// The residual-norm rules of a model spec, kept beside the norms they
// describe (core/ checks fields, not layers): model.norm names a norm;
// α and β are set only for a stack whose layers use DEEPNORM, FOUNDATION_LN or
// UPSCALE_LN (β: DEEPNORM alone); branch_norm is set exactly when some layer
// uses BRANCHNORM, with a maximum norm step and a start scale in range; every
// norm_override names a norm and a layer range inside a stack the model has.
#ifndef PIPETRAIN_MODELS_SPEC_CHECKS_H_
#define PIPETRAIN_MODELS_SPEC_CHECKS_H_

#include "core/config/spec_problems.h"
#include "proto/model_spec.pb.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// Adds a line to `problems` for every rule `model` (defaults applied) breaks.
void CheckNormRules(const ModelSpec& model, SpecProblems& problems);

// The same as a SpecCheck, for LoadRunSpec, ValidateRunSpec and
// ValidateModelSpec.
void CheckModelNorms(const RunSpec& spec, SpecProblems& problems);

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_SPEC_CHECKS_H_
