// Chrome trace (chrome://tracing, Perfetto) of a simulated schedule: one
// complete event per action, one track per rank, so a schedule's bubbles can
// be looked at before any GPU time is spent (`pipetrain plan --trace FILE`).
#ifndef PIPETRAIN_PARALLEL_CHROME_TRACE_H_
#define PIPETRAIN_PARALLEL_CHROME_TRACE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "parallel/schedule_simulator.h"

namespace pipetrain {

// The trace as JSON: {"traceEvents":[...], "displayTimeUnit":"ms"}. Each
// action is {"name":"F3c1","cat":"F","ph":"X","pid":0,"tid":rank,"ts":..,
// "dur":..,"args":{...}} with times in µs: simulated time × `us_per_unit`
// (1000 when the costs are in milliseconds), which must be finite and > 0.
// Ranks are named "rank r".
absl::StatusOr<std::string> ChromeTraceJson(const SimulationResult& result,
                                            double us_per_unit = 1.0);

// Writes ChromeTraceJson to `path`; errors name the path and the reason.
absl::Status WriteChromeTrace(const std::string& path, const SimulationResult& result,
                              double us_per_unit = 1.0);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_CHROME_TRACE_H_
