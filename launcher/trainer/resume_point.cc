#include "launcher/trainer/resume_point.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/checkpoint_layout.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using checkpoint_layout::JoinPath;
using checkpoint_layout::ParseStepDirName;
using checkpoint_layout::ReadLatest;

// The step_<N> directories of `run_dir` (interrupted saves, step_<N>.tmp,
// excluded), newest first.
std::vector<std::pair<int64_t, std::string>> StepDirsNewestFirst(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> dirs;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const int64_t step = ParseStepDirName(name);
    std::error_code is_dir_ec;
    if (step >= 0 && entry.is_directory(is_dir_ec)) dirs.push_back({step, name});
  }
  std::sort(dirs.begin(), dirs.end(), std::greater<>());
  return dirs;
}

// Opens and fully verifies one step directory: the reason it is not whole.
absl::StatusOr<CheckpointReader> OpenVerified(const std::string& dir) {
  absl::StatusOr<CheckpointReader> reader = CheckpointReader::Open(dir);
  if (!reader.ok()) return reader.status();
  absl::StatusOr<VerifySummary> verified = VerifyCheckpoint(*reader);
  if (!verified.ok()) return verified.status();
  return reader;
}

}  // namespace

absl::StatusOr<ResumePoint> FindResumePoint(const std::string& run_dir) {
  ResumePoint point;
  std::error_code ec;
  const bool has_latest = fs::exists(JoinPath(run_dir, checkpoint_layout::kLatest), ec);
  const std::vector<std::pair<int64_t, std::string>> dirs = StepDirsNewestFirst(run_dir);
  if (!has_latest && dirs.empty()) return point;  // a fresh run

  // Why the plain choice (what `latest` names) does not stand, if it does not.
  std::string passed_over;
  if (!has_latest) {
    passed_over = absl::StrCat(JoinPath(run_dir, "latest"), " is missing");
  } else {
    const absl::StatusOr<std::string> latest = ReadLatest(run_dir);
    if (!latest.ok()) {
      passed_over = std::string(latest.status().message());
    } else if (dirs.empty() || *latest != dirs.front().second) {
      passed_over = dirs.empty() ? absl::StrCat(JoinPath(run_dir, "latest"), " names ", *latest,
                                                ", which does not exist")
                                 : absl::StrCat(JoinPath(run_dir, "latest"), " names ", *latest,
                                                " but ", dirs.front().second,
                                                " is newer (a save stopped before it "
                                                "updated latest, or latest was damaged)");
    } else {
      absl::StatusOr<CheckpointReader> reader = CheckpointReader::Open(JoinPath(run_dir, *latest));
      if (reader.ok()) {
        point.reader = std::move(*reader);
        return point;
      }
      passed_over = std::string(reader.status().message());
    }
  }

  // The newest step directory that is whole, read in full to know it.
  std::vector<std::string> refused;
  for (const auto& [step, name] : dirs) {
    absl::StatusOr<CheckpointReader> reader = OpenVerified(JoinPath(run_dir, name));
    if (!reader.ok()) {
      refused.push_back(absl::StrCat(name, ": ", reader.status().message()));
      continue;
    }
    point.reader = std::move(*reader);
    point.note = absl::StrCat("resuming from ", JoinPath(run_dir, name),
                              ", the newest step directory that verifies, because ", passed_over);
    if (!refused.empty()) {
      absl::StrAppend(&point.note,
                      "; passed over (a later save replaces them): ", absl::StrJoin(refused, "; "));
    }
    return point;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "train.output_dir ", run_dir, " holds checkpoints, but none can be resumed: ", passed_over,
      dirs.empty()
          ? std::string()
          : absl::StrCat("; and no step directory is whole:\n  ", absl::StrJoin(refused, "\n  ")),
      "\nNothing was changed. Restore the directory from a copy, or move it away (or set "
      "train.output_dir to a new directory) to start over"));
}

}  // namespace pipetrain
