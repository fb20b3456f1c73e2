// Command-line plumbing shared by the subcommands.
#ifndef PIPETRAIN_LAUNCHER_COMMAND_LINE_H_
#define PIPETRAIN_LAUNCHER_COMMAND_LINE_H_

#include <deque>
#include <string>
#include <vector>

namespace pipetrain {

// What remains of argv once the subcommand and the repeatable `--set`
// options are taken out. The subcommand is the first argument; when that is
// a flag (`pipetrain --spec FILE`, as users type it under mpirun and srun),
// the subcommand is `train`. Flag names may use hyphens (`--save-params`); they
// are rewritten to absl's underscores. `--set` may repeat, which absl flags do not allow,
// so it is collected here before absl parses the rest.
struct CommandLine {
  std::string subcommand;              // empty when none was given
  std::vector<std::string> overrides;  // the values of every --set, in order
  std::vector<char*> absl_argv;        // argv[0] and the flags for absl::ParseCommandLine
  std::deque<std::string> storage;     // rewritten arguments that absl_argv points into
};

CommandLine SplitCommandLine(int argc, char** argv);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_COMMAND_LINE_H_
