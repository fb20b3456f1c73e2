// `pipetrain score --hyp FILE --ref FILE[,FILE2...]`: corpus BLEU, chrF2 and
// chrF2++ of a system output against one or more references, as sacreBLEU's
// CLI computes them with its defaults (core/metrics/, docs/metrics.md).
#ifndef PIPETRAIN_LAUNCHER_SCORE_COMMAND_H_
#define PIPETRAIN_LAUNCHER_SCORE_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pipetrain {

// `argv` is what absl parsed (argv[0] and the flags). --ref may repeat (absl
// keeps only the last, so the values are collected from argv here) and each
// value may be a comma-separated list; a value that names an existing file
// is taken whole even if it has a comma.
absl::Status RunScoreCommand(const std::vector<char*>& argv);

// The lines of a text file as sacreBLEU's CLI reads them: split at "\n",
// "\r\n" or "\r" (Python's universal newlines), trailing whitespace (Python's
// definition) removed. Errors name the file, and the line for bad UTF-8.
absl::StatusOr<std::vector<std::string>> ReadScoreLines(const std::string& path);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_SCORE_COMMAND_H_
