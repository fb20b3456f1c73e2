#include "core/util/log.h"

#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace pipetrain {
namespace {

std::string& Identity() {
  static std::string* identity = new std::string();
  return *identity;
}
bool g_verbose = true;
std::mutex g_mutex;

}  // namespace

void SetLogIdentity(std::string identity) { Identity() = std::move(identity); }
void SetLogVerbose(bool verbose) { g_verbose = verbose; }

void LogLine(char level, std::string_view tag, std::string_view message) {
  if (level == 'I' && !g_verbose) return;
  std::string line;
  if (!Identity().empty()) absl::StrAppend(&line, "[", Identity(), "] ");
  if (level != 'I') absl::StrAppend(&line, level == 'W' ? "warning: " : "error: ");
  if (!tag.empty()) absl::StrAppend(&line, "[", std::string(tag), "] ");
  absl::StrAppend(&line, std::string(message), "\n");
  std::lock_guard<std::mutex> lock(g_mutex);
  // Info to stdout (metrics consumers read it); problems to stderr.
  std::FILE* out = level == 'I' ? stdout : stderr;
  std::fputs(line.c_str(), out);
  std::fflush(out);
}

}  // namespace pipetrain
