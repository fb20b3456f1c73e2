#include "core/util/host_memory.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pipetrain {
namespace {

absl::StatusOr<int64_t> ReadProcField(const std::string& path, const std::string& field) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path, " (not Linux?)"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<int64_t> bytes = ProcFieldBytes(text.str(), field);
  if (!bytes.ok()) return absl::NotFoundError(absl::StrCat(bytes.status().message(), " of ", path));
  return bytes;
}

}  // namespace

absl::StatusOr<int64_t> ProcFieldBytes(const std::string& proc_text, const std::string& field) {
  const std::string prefix = field + ":";
  for (absl::string_view line : absl::StrSplit(proc_text, '\n')) {
    if (!absl::ConsumePrefix(&line, prefix)) continue;
    line = absl::StripAsciiWhitespace(line);
    // The kernel writes kilobytes as "1234 kB".
    if (!absl::ConsumeSuffix(&line, "kB")) break;
    int64_t kilobytes = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kilobytes) || kilobytes < 0) break;
    return kilobytes * 1024;
  }
  return absl::NotFoundError(absl::StrCat("no \"", field, ": N kB\" line"));
}

absl::StatusOr<int64_t> ResidentBytes() { return ReadProcField("/proc/self/status", "VmRSS"); }
absl::StatusOr<int64_t> PeakResidentBytes() { return ReadProcField("/proc/self/status", "VmHWM"); }
absl::Status ResetPeakResident() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  if (!out) return absl::UnavailableError("cannot write /proc/self/clear_refs (not Linux?)");
  return absl::OkStatus();
}

absl::StatusOr<int64_t> AvailableBytes() { return ReadProcField("/proc/meminfo", "MemAvailable"); }

}  // namespace pipetrain
