// A small valid spec and the helper that breaks one thing in it, shared by
// the suites of the spec checks (core/'s fields in spec_loader_test, the norm
// rules of models/ in spec_checks_test, the placement rules of parallel/ in
// placement_checks_test).
#ifndef PIPETRAIN_TESTS_TESTING_SPEC_FIXTURE_H_
#define PIPETRAIN_TESTS_TESTING_SPEC_FIXTURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/config/spec_loader.h"
#include "gtest/gtest.h"

namespace pipetrain::testing {

// A complete, valid spec; the malformed cases each break one thing in it.
// (The raw-string delimiter is not "pb" so that clang-format leaves the
// layout, which the line:column expectations depend on, alone.)
inline constexpr char kValidSpec[] = R"spec(model {
  kind: ENCODER_DECODER
  vocab_size: 32
  d_model: 64
  ffn_dim: 128
  heads: 4
  encoder_layers: 2
  decoder_layers: 2
  norm: DEEPNORM
}
train {
  lr: 1e-3
  steps: 10
  tokens_per_batch: 512
}
)spec";

// `text` with the first `from` replaced by `to`.
inline std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "test setup: '" << from << "' not in the spec";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// kValidSpec with `from` replaced by `to`, parsed and validated as "x.pbtxt"
// with `checks` after core/'s own.
inline absl::Status CheckEditedSpec(const std::string& from, const std::string& to,
                                    absl::Span<const SpecCheck> checks = {}) {
  auto spec = ParseRunSpecText(Replace(kValidSpec, from, to), "x.pbtxt");
  if (!spec.ok()) return spec.status();
  return ValidateRunSpec(*spec, "x.pbtxt", checks);
}

inline std::string Message(const absl::Status& status) { return std::string(status.message()); }

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_SPEC_FIXTURE_H_
