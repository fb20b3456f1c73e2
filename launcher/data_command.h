// `pipetrain data build`: a multi-way corpus from the gettext catalogs of a
// locale tree (--from_gettext /usr/share/locale), a TSV file (--from_tsv) or
// two line-aligned files (--src/--tgt with --src_lang/--tgt_lang), or any mix
// of them, written to --out as messages, directions and statistics.
// See docs/data.md.
#ifndef PIPETRAIN_LAUNCHER_DATA_COMMAND_H_
#define PIPETRAIN_LAUNCHER_DATA_COMMAND_H_

#include <vector>

#include "absl/status/status.h"

namespace pipetrain {

// `argv` is what absl parsed (argv[0] and the flags); the action ("build")
// is the one positional argument among them.
absl::Status RunDataCommand(const std::vector<char*>& argv);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_DATA_COMMAND_H_
