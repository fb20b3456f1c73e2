// The Chrome trace of a simulated schedule is JSON that Python's parser
// accepts, with one complete event per action on the rank's track.
#include "parallel/chrome_trace.h"

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parallel/schedule.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;

constexpr char kPython[] = "/usr/bin/python3";

SimulationResult Simulate(int p, int m) {
  absl::StatusOr<Schedule> s = BuildSchedule(SCHEDULE_1F1B, p, m, 1);
  EXPECT_TRUE(s.ok()) << s.status();
  SimulationCosts costs;
  costs.compute = {1.5, 3, 0.75};
  costs.latency = 0.1;
  absl::StatusOr<SimulationResult> r = SimulateSchedule(*s, costs);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(ChromeTraceTest, EventsCarryRankTimesAndNames) {
  const SimulationResult r = Simulate(2, 1);
  absl::StatusOr<std::string> json = ChromeTraceJson(r, 1000);
  ASSERT_TRUE(json.ok()) << json.status();
  // Rank 1's first action: RECV_F0c0<0 from 1.5 (F on rank 0) + 0.1 latency.
  EXPECT_THAT(*json, HasSubstr(R"({"name":"RECV_F0c0<0","cat":"RECV_F","ph":"X","pid":0,)"
                               R"("tid":1,"ts":1600,"dur":0,)"
                               R"("args":{"microbatch":0,"chunk":0,"peer":0}})"));
  EXPECT_THAT(*json, HasSubstr(R"({"name":"F0c0","cat":"F","ph":"X","pid":0,"tid":0,"ts":0,)"
                               R"("dur":1500,"args":{"microbatch":0,"chunk":0}})"));
  EXPECT_THAT(*json, HasSubstr(R"("args":{"name":"rank 1"})"));
  EXPECT_FALSE(ChromeTraceJson(r, 0).ok());
  EXPECT_FALSE(ChromeTraceJson(r, std::numeric_limits<double>::infinity()).ok());
}

TEST(ChromeTraceTest, WrittenFileParsesAsJson) {
  const SimulationResult r = Simulate(4, 8);
  int actions = 0;
  for (const RankSimulation& rank : r.ranks) actions += static_cast<int>(rank.timeline.size());
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "pipetrain_chrome_trace_test.json").string();
  ASSERT_TRUE(WriteChromeTrace(path, r).ok());
  EXPECT_FALSE(WriteChromeTrace("/nonexistent-dir/trace.json", r).ok());

  if (!std::filesystem::exists(kPython)) GTEST_SKIP() << kPython << " is missing";
  // The script checks the structure and exits 0 only when every action is a
  // complete event with a non-negative duration on a known rank.
  const std::string script = absl::StrCat(
      "import json,sys; t=json.load(open(sys.argv[1])); e=t['traceEvents']; "
      "x=[v for v in e if v['ph']=='X']; "
      "sys.exit(0 if len(x)==",
      actions, " and all(v['dur']>=0 and 0<=v['tid']<4 and v['pid']==0 for v in x) else 3)");
  const std::string command = absl::StrCat(kPython, " -c \"", script, "\" ", path);
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace pipetrain
