// Small readings of ModelSpec fields that both core's field checks
// (spec_validate.cc) and the norm rules of models/spec_checks.cc need, so
// their messages name things the same way.
#ifndef PIPETRAIN_CORE_CONFIG_SPEC_FIELDS_H_
#define PIPETRAIN_CORE_CONFIG_SPEC_FIELDS_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "proto/model_spec.pb.h"

namespace pipetrain::spec_fields {

// The enum's name, or its number when the value is not one of the enum's.
inline std::string NormName(ResidualNorm norm) {
  return ResidualNorm_IsValid(norm) ? ResidualNorm_Name(norm)
                                    : absl::StrCat(static_cast<int>(norm));
}
inline std::string KindName(ModelKind kind) {
  return ModelKind_IsValid(kind) ? ModelKind_Name(kind) : absl::StrCat(static_cast<int>(kind));
}

// Layers of `stack` in the model.
inline int Depth(const ModelSpec& m, Stack stack) {
  return stack == ENCODER ? m.encoder_layers() : m.decoder_layers();
}
inline const char* StackName(Stack stack) { return stack == ENCODER ? "encoder" : "decoder"; }

// Whether a norm override applies to layers of `stack`.
inline bool Covers(const NormOverride& o, Stack stack) {
  return o.stack() == STACK_UNSPECIFIED || o.stack() == stack;
}

}  // namespace pipetrain::spec_fields

#endif  // PIPETRAIN_CORE_CONFIG_SPEC_FIELDS_H_
