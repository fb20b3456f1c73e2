// `pipetrain ckpt inspect|verify|export PATH`: look into, check and convert
// the checkpoints of DESIGN.md decision 6 (docs/checkpoints.md). PATH is a
// run directory (its `latest` is followed) or one step_<N> directory.
#ifndef PIPETRAIN_LAUNCHER_CKPT_COMMAND_H_
#define PIPETRAIN_LAUNCHER_CKPT_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/checkpoint.h"

namespace pipetrain {

// `args` are the positional arguments after `ckpt`: the action and PATH.
// `export` writes the file named by --out.
absl::Status RunCkptCommand(const std::vector<std::string>& args);

// What `inspect` prints: step, spec summary, files, tensors, totals.
std::string DescribeCheckpoint(const CheckpointReader& reader);

struct SafetensorsExport {
  int64_t tensors = 0;
  int64_t parameters = 0;  // elements
  int64_t bytes = 0;       // of the whole file
};

// Writes the checkpoint's parameters (no optimizer state) as a .safetensors
// file: an 8-byte little-endian header length, a JSON header (tensors by
// name with dtype "F32", shape and data_offsets; __metadata__ with the
// step and the resolved spec) padded with spaces to 8 bytes, then the
// tensors' bytes back to back in sorted name order. f64 checkpoints are
// rounded to f32. The file appears atomically (written as FILE.tmp first).
absl::StatusOr<SafetensorsExport> ExportSafetensors(const CheckpointReader& reader,
                                                    const std::string& out_path);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_CKPT_COMMAND_H_
