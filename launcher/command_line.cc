#include "launcher/command_line.h"

#include <cstring>

namespace pipetrain {

CommandLine SplitCommandLine(int argc, char** argv) {
  CommandLine cl;
  cl.absl_argv.push_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (std::strcmp(arg, "--set") == 0 || std::strcmp(arg, "-set") == 0) {
      if (i + 1 < argc) {
        cl.overrides.emplace_back(argv[++i]);
      } else {
        cl.overrides.emplace_back("");  // reported as malformed by the loader
      }
    } else if (std::strncmp(arg, "--set=", 6) == 0) {
      cl.overrides.emplace_back(arg + 6);
    } else if (cl.subcommand.empty() && arg[0] != '-') {
      cl.subcommand = arg;
    } else {
      cl.absl_argv.push_back(argv[i]);
    }
  }
  return cl;
}

}  // namespace pipetrain
