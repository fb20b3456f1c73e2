// What the checkpoint writer (checkpoint.cc) and reader (checkpoint_reader.cc)
// agree on: the names in a run directory and a step directory, and the small
// helpers both use to build paths and to word their errors.
#ifndef PIPETRAIN_MODELS_CHECKPOINT_LAYOUT_H_
#define PIPETRAIN_MODELS_CHECKPOINT_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "proto/checkpoint.pb.h"

namespace pipetrain::checkpoint_layout {

inline constexpr char kLatest[] = "latest";         // RUN_DIR/latest names the step directory
inline constexpr char kManifest[] = "manifest.pb";  // in every complete step directory
inline constexpr char kTmpSuffix[] = ".tmp";        // step_<N>.tmp while being written
inline constexpr size_t kMaxListedProblems = 20;

std::string JoinPath(const std::string& dir, const std::string& name);
// N for "step_<N>", else -1.
int64_t ParseStepDirName(const std::string& name);
// Names become file names: no separators, no leading dot, nothing a shell quotes.
bool IsSafeName(const std::string& name);
bool HasSuffix(const std::string& s, absl::string_view suffix);
std::string ShapeOf(const CheckpointTensor& t);
std::string Describe(const CheckpointTensor& t);  // "name (role)"
absl::StatusOr<DType> DTypeFromName(const std::string& name);
// The first kMaxListedProblems, one a line, and how many more.
std::string ListProblems(const std::vector<std::string>& problems);
absl::Status ErrnoStatus(const std::string& what, int err);
// The step directory name RUN_DIR/latest holds, checked.
absl::StatusOr<std::string> ReadLatest(const std::string& run_dir);

}  // namespace pipetrain::checkpoint_layout

#endif  // PIPETRAIN_MODELS_CHECKPOINT_LAYOUT_H_
