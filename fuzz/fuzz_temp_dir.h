// Helpers of the fuzz targets. A private scratch directory for fuzz targets whose reader takes a
// path rather than bytes (a checkpoint step directory, a shard directory, a TSV file). One per
// process, so parallel fuzzing jobs (-jobs, -fork) never see each other's files; removed when the
// process exits normally.
#ifndef PIPETRAIN_FUZZ_FUZZ_TEMP_DIR_H_
#define PIPETRAIN_FUZZ_FUZZ_TEMP_DIR_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace pipetrain::fuzz {

// The directory ($TMPDIR or /tmp, "pipetrain-fuzz-XXXXXX"), made on first
// use. Aborts when it cannot be made: a target that cannot write its input
// would otherwise fuzz nothing and still report success.
const std::string& FuzzTempDir();

// Empties FuzzTempDir() (one input's files must not leak into the next).
void ClearFuzzTempDir();

// Writes `bytes` to FuzzTempDir()/name and returns the path; aborts on error.
std::string WriteFuzzFile(const std::string& name, std::string_view bytes);

// With PIPETRAIN_FUZZ_EXPLAIN set in the environment, prints `status` after
// `what`: why a replayed input (`./x_fuzzer FILE`) stopped where it did.
void Explain(const char* what, const absl::Status& status);

}  // namespace pipetrain::fuzz

#endif  // PIPETRAIN_FUZZ_FUZZ_TEMP_DIR_H_
