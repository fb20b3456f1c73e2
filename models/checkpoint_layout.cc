#include "models/checkpoint_layout.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/io/atomic_file.h"
#include "core/status_macros.h"
#include "models/checkpoint.h"

namespace pipetrain::checkpoint_layout {

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

int64_t ParseStepDirName(const std::string& name) {
  absl::string_view rest(name);
  if (!absl::ConsumePrefix(&rest, "step_") || rest.empty()) return -1;
  if (!std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  int64_t step = -1;
  return absl::SimpleAtoi(rest, &step) ? step : -1;
}

bool IsSafeName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool HasSuffix(const std::string& s, absl::string_view suffix) {
  return absl::EndsWith(absl::string_view(s), suffix);
}

std::string ShapeOf(const CheckpointTensor& t) {
  return ShapeString(Shape(t.shape().begin(), t.shape().end()));
}

std::string Describe(const CheckpointTensor& t) {
  return absl::StrCat(t.name(), " (", TensorRoleLabel(t.role()), ")");
}

absl::StatusOr<DType> DTypeFromName(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f64") return DType::kF64;
  return absl::DataLossError(absl::StrCat("unknown dtype '", name, "' (expected f32 or f64)"));
}

std::string ListProblems(const std::vector<std::string>& problems) {
  std::vector<std::string> shown(problems.begin(),
                                 problems.begin() + std::min(problems.size(), kMaxListedProblems));
  std::string text = absl::StrJoin(shown, "\n  ");
  if (problems.size() > shown.size()) {
    absl::StrAppend(&text, "\n  ... and ", problems.size() - shown.size(), " more");
  }
  return text;
}

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

absl::StatusOr<std::string> ReadLatest(const std::string& run_dir) {
  const std::string path = JoinPath(run_dir, kLatest);
  PT_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  const std::string name(absl::StripAsciiWhitespace(text));
  if (ParseStepDirName(name) < 0) {
    return absl::DataLossError(
        absl::StrCat(path, " holds '", name, "', not the name of a step directory (step_<N>)"));
  }
  return name;
}

}  // namespace pipetrain::checkpoint_layout
