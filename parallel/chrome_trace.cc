#include "parallel/chrome_trace.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

// JSON has no inf/nan; %.17g round-trips every finite double.
std::string Number(double value) { return absl::StrFormat("%.17g", value); }

}  // namespace

absl::StatusOr<std::string> ChromeTraceJson(const SimulationResult& result, double us_per_unit) {
  PT_CHECK_ARG(std::isfinite(us_per_unit) && us_per_unit > 0,
               "chrome trace: us_per_unit = ", us_per_unit, ", expected a finite value > 0");
  std::string out = "{\"traceEvents\":[\n";
  bool first = true;
  auto add = [&](const std::string& event) {
    if (!first) out += ",\n";
    first = false;
    out += event;
  };
  for (size_t r = 0; r < result.ranks.size(); ++r) {
    // Names only hold letters, digits, '_', '<' and '>': nothing to escape.
    add(absl::StrCat(R"({"name":"thread_name","ph":"M","pid":0,"tid":)", r,
                     R"(,"args":{"name":"rank )", r, R"("}})"));
    for (const TimedAction& t : result.ranks[r].timeline) {
      const Action& a = t.action;
      std::string args = absl::StrCat(R"({"microbatch":)", a.microbatch, R"(,"chunk":)", a.chunk);
      if (a.peer >= 0) absl::StrAppend(&args, R"(,"peer":)", a.peer);
      args += "}";
      add(absl::StrCat(R"({"name":")", FormatAction(a), R"(","cat":")", ActionTypeName(a.type),
                       R"(","ph":"X","pid":0,"tid":)", r, R"(,"ts":)",
                       Number(t.start * us_per_unit), R"(,"dur":)",
                       Number((t.end - t.start) * us_per_unit), R"(,"args":)", args, "}"));
    }
  }
  out += "\n],\"displayTimeUnit\":\"ms\"}\n";
  return out;
}

absl::Status WriteChromeTrace(const std::string& path, const SimulationResult& result,
                              double us_per_unit) {
  PT_ASSIGN_OR_RETURN(std::string json, ChromeTraceJson(result, us_per_unit));
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open trace file ", path, " for writing: ", std::strerror(errno)));
  }
  file << json;
  file.close();
  if (!file) {
    return absl::DataLossError(
        absl::StrCat("writing trace file ", path, " failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
