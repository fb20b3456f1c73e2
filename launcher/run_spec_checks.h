// Every check a spec passes before a run is planned or trained: core/'s field
// checks (core/config/spec_loader.h) plus the rules of the libraries above
// core/, which knows no layers or ranks: the residual-norm rules of models/
// (models/spec_checks.h) and the placement rules of parallel/
// (parallel/placement_checks.h).
//
// The list is written out here, where the libraries meet, rather than built
// by static registrars in models/ and parallel/: the linker drops an object
// file of a static library that nothing references, and a registrar in it
// with it, so a check would silently not run in some binaries. A list that
// names each check cannot lose one.
#ifndef PIPETRAIN_LAUNCHER_RUN_SPEC_CHECKS_H_
#define PIPETRAIN_LAUNCHER_RUN_SPEC_CHECKS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/config/spec_problems.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// The checks of the libraries above core/, in the order their lines appear.
absl::Span<const SpecCheck> RunSpecChecks();

// LoadRunSpec with RunSpecChecks(): what `train` and `plan` load.
absl::StatusOr<RunSpec> LoadCheckedRunSpec(const std::string& spec_path,
                                           const std::string& config_path,
                                           const std::vector<std::string>& overrides);

// ValidateRunSpec with RunSpecChecks(), for a spec that did not come from a
// file (a test's, a checkpoint's).
absl::Status CheckRunSpec(const RunSpec& spec, const std::string& filename);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_RUN_SPEC_CHECKS_H_
