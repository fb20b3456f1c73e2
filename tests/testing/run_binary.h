// Runs the pipetrain binary from a test and parses what it prints.
#ifndef PIPETRAIN_TESTS_TESTING_RUN_BINARY_H_
#define PIPETRAIN_TESTS_TESTING_RUN_BINARY_H_

#include <string>
#include <vector>

namespace pipetrain::testing {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command from the source directory (so configs/... resolve).
RunResult RunCommand(const std::string& command);
// Runs `PIPETRAIN_BINARY args` from the source directory.
RunResult RunPipetrain(const std::string& args);

// The values of `key=` on every "step" line, in order (e.g. key "loss").
std::vector<double> StepValues(const std::string& output, const std::string& key);
// The params_digest of the "final:" line, or "" when there is none.
std::string FinalDigest(const std::string& output);
// The same, as a test compares it: a failure (naming the output) unless it is
// 16 hex digits, so two runs that both failed to print one never compare
// equal as "" == "".
std::string CheckedFinalDigest(const std::string& output);

// The values of `key` on the training lines (those with a grad_norm; not the
// validation lines) of a metrics.jsonl file, in order.
std::vector<double> MetricsValues(const std::string& path, const std::string& key);

// Empty when `a` and `b` (one value per step) have the same length, are all
// finite, and |a − b| ≤ rel · |a| at every step; else what differs first.
// A NaN or Inf on either side is a difference, whatever the tolerance.
std::string StepsDiffer(const std::vector<double>& a, const std::vector<double>& b, double rel);

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_RUN_BINARY_H_
