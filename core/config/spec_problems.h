// The problems found in one spec, one line each, "FILENAME: field=value
// problem; what is allowed", reported together (a user fixes a spec once, not
// once per error). core/ checks what the protos say of each field; the rules
// only a library above it knows are SpecChecks of that library (DESIGN.md:
// core/ knows no layers or ranks): models/spec_checks.h for the residual
// norms, parallel/placement_checks.h for stages, chunks and schedules.
#ifndef PIPETRAIN_CORE_CONFIG_SPEC_PROBLEMS_H_
#define PIPETRAIN_CORE_CONFIG_SPEC_PROBLEMS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

class SpecProblems {
 public:
  // `filename` prefixes every line ("<spec>" when empty).
  explicit SpecProblems(const std::string& filename)
      : file_(filename.empty() ? "<spec>" : filename) {}

  template <typename... Parts>
  void Add(const Parts&... parts) {
    lines_.push_back(absl::StrCat(file_, ": ", parts...));
  }

  // OK when nothing was added, else InvalidArgument with every line.
  absl::Status ToStatus() const {
    if (lines_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

// A check a library above core/ adds to spec validation. It sees the spec
// with its defaults applied (ApplyDefaults) and adds one line per problem.
using SpecCheck = void (*)(const RunSpec& spec, SpecProblems& problems);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_CONFIG_SPEC_PROBLEMS_H_
