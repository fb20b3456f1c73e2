#include "launcher/command_line.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>

namespace pipetrain {
namespace {

// "--from-gettext=x" → "--from_gettext=x": flags may be spelled with hyphens,
// as most command-line tools allow; absl's names use underscores. Values and
// positional arguments are left alone.
char* NormalizeFlagName(char* arg, std::deque<std::string>* storage) {
  if (std::strncmp(arg, "--", 2) != 0 || std::strchr(arg, '-') == nullptr) return arg;
  std::string text(arg);
  const size_t end = std::min(text.find('='), text.size());
  bool changed = false;
  for (size_t i = 2; i < end; ++i) {
    if (text[i] == '-') {
      text[i] = '_';
      changed = true;
    }
  }
  if (!changed) return arg;
  storage->push_back(std::move(text));
  return storage->back().data();
}

}  // namespace

CommandLine SplitCommandLine(int argc, char** argv) {
  CommandLine cl;
  cl.absl_argv.push_back(argv[0]);
  // `pipetrain --spec FILE ...`: training is what the binary is for. (Not for
  // --help or --version alone, which absl answers.)
  if (argc > 1 && argv[1][0] == '-' && std::strcmp(argv[1], "--help") != 0 &&
      std::strcmp(argv[1], "--helpfull") != 0 && std::strcmp(argv[1], "--version") != 0) {
    cl.subcommand = "train";
  }
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
      cl.absl_argv.push_back(NormalizeFlagName(argv[i], &cl.storage));
    }
  }
  return cl;
}

}  // namespace pipetrain
