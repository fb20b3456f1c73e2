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

inline constexpr char kLatest[] = "latest";              // RUN_DIR/latest names the step directory
inline constexpr char kManifest[] = "manifest.pb";       // in every complete step directory
inline constexpr char kManifestText[] = "manifest.txt";  // the manifest as text, for people
inline constexpr char kTmpSuffix[] = ".tmp";             // step_<N>.tmp while being written
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

// Opens DIR/NAME for reading, refusing what a checkpoint never holds: a
// symbolic link that leads out of DIR, and anything but a regular file (a
// FIFO would block the open or the read forever, a device would read
// endlessly). Fills `size` with the file's real size. The caller closes the
// descriptor.
absl::StatusOr<int> OpenCheckpointFile(const std::string& dir, const std::string& name,
                                       int64_t* size);
// The whole of DIR/NAME (opened as above), refused when larger than `max_bytes`.
absl::StatusOr<std::string> ReadCheckpointFile(const std::string& dir, const std::string& name,
                                               int64_t max_bytes);

// manifest.pb's own checksum (format 2): `body` (a serialised manifest
// without manifest_crc32c) followed by field 15 as fixed32, i.e. 0x7d and the
// CRC-32C of `body` little-endian. The result still parses as a manifest.
inline constexpr size_t kManifestSealBytes = 5;
std::string SealManifest(const std::string& body);
// Whether `bytes` ends with a seal; `*stored` and `*computed` get the CRC it
// holds and the CRC of the bytes before it.
bool ManifestSeal(const std::string& bytes, uint32_t* stored, uint32_t* computed);

// a * b and a + b for sizes, false when the result would exceed INT64_MAX
// (or an operand is negative): manifest fields are untrusted.
bool CheckedMul(int64_t a, int64_t b, int64_t* out);
bool CheckedAdd(int64_t a, int64_t b, int64_t* out);

}  // namespace pipetrain::checkpoint_layout

#endif  // PIPETRAIN_MODELS_CHECKPOINT_LAYOUT_H_
