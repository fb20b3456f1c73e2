// Loading a run spec: text-format parsing with file:line:col errors, `--set`
// overrides by field path, the documented "0 means default" values, and the
// semantic checks that turn a bad spec into one clear message before any
// memory is allocated. The .proto comments are the reference; this file
// enforces them.
#ifndef PIPETRAIN_CORE_CONFIG_SPEC_LOADER_H_
#define PIPETRAIN_CORE_CONFIG_SPEC_LOADER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/config/spec_problems.h"
#include "proto/model_spec.pb.h"
#include "proto/run_spec.pb.h"
#include "proto/train_config.pb.h"

namespace pipetrain {

// Parses a RunSpec in protobuf text format, where an enum value may also be
// written by its spelling (text_enum_spelling.h). A syntax error, an unknown field
// or enum value, or a value of the wrong type gives InvalidArgument
// "FILENAME:LINE:COL: message" (1-based) followed by a hint (for an unknown
// field, the valid field names of that message).
absl::StatusOr<RunSpec> ParseRunSpecText(const std::string& text, const std::string& filename);

// The same for a TrainConfig file (the --config file: TrainConfig fields at
// top level, no `train { }` wrapper).
absl::StatusOr<TrainConfig> ParseTrainConfigText(const std::string& text,
                                                 const std::string& filename);

// Applies one `--set` assignment "path=value" to `spec`. `path` is a dotted
// field path from RunSpec (`model.d_model`, `train.adamw.beta2`); the leading
// `model.` or `train.` may be left out when the first component names a field
// of exactly one of ModelSpec and TrainConfig (`d_model=128`, `steps=5`,
// `synthetic.max_length=8`). Enum values are given by name in any case
// (`norm=PRE_LN`, `norm=pre_ln`) or by spelling (`pipeline.schedule=1f1b`,
// enum_spelling.h), booleans as true/false, strings with or without double
// quotes. Repeated fields (norm_override) cannot be set this way.
absl::Status ApplyOverride(RunSpec* spec, const std::string& assignment);

// Fills every value the protos document as "default X when 0/unset".
// Idempotent. Branch-norm defaults are filled only when some layer uses
// BRANCHNORM, so a spec without it keeps an empty branch_norm block.
void ApplyDefaults(RunSpec* spec);

// Semantic checks of a whole spec: the fields core/ knows, then `checks`,
// the rules of the libraries above it (spec_problems.h; every check a run
// needs is listed in launcher/run_spec_checks.h). Values the protos define as
// "0 means default" are checked as their defaults, so the spec may be
// validated before or after ApplyDefaults. All problems are reported at once,
// one per line, each as "FILENAME: field=value problem; what is allowed".
absl::Status ValidateRunSpec(const RunSpec& spec, const std::string& filename,
                             absl::Span<const SpecCheck> checks = {});
// The model half alone (for commands that do not train: plan, translate);
// `checks` see a RunSpec with an empty train block.
absl::Status ValidateModelSpec(const ModelSpec& model, const std::string& filename,
                               absl::Span<const SpecCheck> checks = {});

// Reads `spec_path`, merges the TrainConfig in `config_path` (if non-empty)
// into its `train` block (protobuf MergeFrom: fields set in the config replace
// the spec's; a proto3 scalar written as 0 counts as not set), applies
// `overrides` in order, then ValidateRunSpec with `checks` and ApplyDefaults.
// A file that cannot be read gives NotFound naming the path.
absl::StatusOr<RunSpec> LoadRunSpec(const std::string& spec_path, const std::string& config_path,
                                    const std::vector<std::string>& overrides,
                                    absl::Span<const SpecCheck> checks = {});

// The spec in text format, as logged at start and stored in checkpoints;
// ParseRunSpecText of it gives back an equal message.
std::string ResolvedSpecText(const RunSpec& spec);

// The residual normalization of layer `layer` (0-based) of `stack` (ENCODER
// or DECODER): model.norm, replaced by every norm_override whose stack and
// range cover the layer; later overrides win. InvalidArgument when the stack
// is unspecified, the layer is outside the stack, or the result is
// unspecified.
absl::StatusOr<ResidualNorm> NormForLayer(const ModelSpec& model, Stack stack, int layer);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_CONFIG_SPEC_LOADER_H_
