#include "tests/testing/run_binary.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace pipetrain::testing {

RunResult RunPipetrain(const std::string& args) {
  return RunCommand(std::string(PIPETRAIN_BINARY) + " " + args);
}

RunResult RunCommand(const std::string& command_line) {
  RunResult result;
  const std::string command =
      std::string("cd ") + PIPETRAIN_SOURCE_DIR + " && " + command_line + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::vector<double> StepValues(const std::string& output, const std::string& key) {
  std::vector<double> values;
  std::istringstream lines(output);
  std::string line;
  const std::string needle = " " + key + "=";
  while (std::getline(lines, line)) {
    if (line.find("] step ") == std::string::npos && line.rfind("step ", 0) != 0) continue;
    const size_t at = line.find(needle);
    if (at == std::string::npos) continue;
    values.push_back(std::strtod(line.c_str() + at + needle.size(), nullptr));
  }
  return values;
}

std::string FinalDigest(const std::string& output) {
  const size_t at = output.find("params_digest=");
  if (at == std::string::npos) return "";
  const size_t begin = at + std::string("params_digest=").size();
  const size_t end = output.find_first_of(" \n", begin);
  return output.substr(begin, end - begin);
}

std::string CheckedFinalDigest(const std::string& output) {
  const std::string digest = FinalDigest(output);
  const bool hex =
      digest.size() == 16 && digest.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!hex) ADD_FAILURE() << "no 16-hex-digit params_digest in:\n" << output;
  return digest;
}

std::vector<double> MetricsValues(const std::string& path, const std::string& key) {
  std::vector<double> values;
  std::ifstream in(path);
  std::string line;
  const std::string needle = "\"" + key + "\":";
  while (std::getline(in, line)) {
    if (line.find("\"grad_norm\"") == std::string::npos) continue;  // a validation line
    const size_t at = line.find(needle);
    if (at == std::string::npos) continue;
    values.push_back(std::strtod(line.c_str() + at + needle.size(), nullptr));
  }
  return values;
}

std::string StepsDiffer(const std::vector<double>& a, const std::vector<double>& b, double rel) {
  if (a.empty() || a.size() != b.size()) {
    return "different numbers of steps: " + std::to_string(a.size()) + " and " +
           std::to_string(b.size());
  }
  for (size_t i = 0; i < a.size(); ++i) {
    // Written so that a NaN fails: every comparison with NaN is false.
    const bool close =
        std::isfinite(a[i]) && std::isfinite(b[i]) && std::abs(a[i] - b[i]) <= rel * std::abs(a[i]);
    if (!close) {
      char text[160];
      std::snprintf(text, sizeof(text), "step %zu: %.17g vs %.17g (tolerance %g relative)", i + 1,
                    a[i], b[i], rel);
      return text;
    }
  }
  return "";
}

}  // namespace pipetrain::testing
