#include "launcher/run_spec_checks.h"

#include "core/config/spec_loader.h"
#include "models/spec_checks.h"
#include "parallel/placement_checks.h"

namespace pipetrain {

absl::Span<const SpecCheck> RunSpecChecks() {
  static constexpr SpecCheck kChecks[] = {CheckModelNorms, CheckPlacement};
  return kChecks;
}

absl::StatusOr<RunSpec> LoadCheckedRunSpec(const std::string& spec_path,
                                           const std::string& config_path,
                                           const std::vector<std::string>& overrides) {
  return LoadRunSpec(spec_path, config_path, overrides, RunSpecChecks());
}

absl::Status CheckRunSpec(const RunSpec& spec, const std::string& filename) {
  return ValidateRunSpec(spec, filename, RunSpecChecks());
}

}  // namespace pipetrain
