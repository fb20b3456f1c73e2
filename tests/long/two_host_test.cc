// Two hosts for real (issue 13 §9): deploy/two_host_check.sh makes two
// network namespaces joined by a veth pair and runs
// `mpirun -np 2 pipetrain train --spec configs/tiny.pbtxt --set pipeline.stages=2`
// with one rank in each, over TCP on the veth; the final params_digest must
// equal the one-process run's. The script proves the ranks ran in different
// namespaces and that the traffic crossed the veth, and cleans up after
// itself; these tests also check that its checks can fail and that it stops
// by itself. Where network namespaces are not permitted (not root, or a
// container without CAP_SYS_ADMIN) the script exits 77 and the tests skip
// with its reason.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

constexpr int kSkipped = 77;

// Open MPI's launcher: the first word of PIPETRAIN_MPIRUN where CMake gave one.
std::string Mpirun() {
#ifdef PIPETRAIN_MPIRUN
  const std::string line = PIPETRAIN_MPIRUN;
  return line.substr(0, line.find(' '));
#else
  return "mpirun";
#endif
}

testing::RunResult RunCheck(const std::string& binary, const std::string& args) {
  return testing::RunCommand("deploy/two_host_check.sh --binary " + binary + " --mpirun " +
                             Mpirun() + " " + args);
}

// A run expected to fail keeps its logs: in the test's directory, not /tmp.
std::string Workdir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  return " --workdir " + dir.string();
}

// The "SKIP: reason" line, for GTEST_SKIP.
std::string SkipReason(const std::string& output) {
  std::smatch m;
  if (std::regex_search(output, m, std::regex("SKIP: ([^\n]*)"))) return m[1];
  return output;
}

// Neither namespace the run named is left behind.
void ExpectNamespacesGone(const std::string& output) {
  std::smatch m;
  ASSERT_TRUE(std::regex_search(output, m, std::regex("hosts (pt2h_a_[0-9a-f]+) .* and "
                                                      "(pt2h_b_[0-9a-f]+) ")))
      << output;
  EXPECT_FALSE(std::filesystem::exists("/var/run/netns/" + m[1].str())) << m[1];
  EXPECT_FALSE(std::filesystem::exists("/var/run/netns/" + m[2].str())) << m[2];
}

// A stand-in for pipetrain, written to the test's directory.
std::string FakeBinary(const std::string& name, const std::string& body) {
  const std::filesystem::path path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path) << "#!/bin/sh\n" << body;
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path.string();
}

TEST(TwoHostTest, PipelineOverVethEqualsOneProcessBitwise) {
  const auto r = RunCheck(PIPETRAIN_BINARY, "--time-limit 600");
  if (r.exit_code == kSkipped) GTEST_SKIP() << SkipReason(r.output);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Every proof the script makes, as it states them.
  EXPECT_THAT(r.output, HasSubstr("netns_rsh: 10.77.0.2 -> ip netns exec pt2h_b_")) << r.output;
  EXPECT_THAT(r.output, ContainsRegex("rank 0 pid [0-9]+ net:\\[[0-9]+\\]")) << r.output;
  EXPECT_THAT(r.output, ContainsRegex("rank 1 pid [0-9]+ net:\\[[0-9]+\\]")) << r.output;
  EXPECT_THAT(r.output, ContainsRegex("over the veth: pt2h_a_[0-9a-f]+ -> pt2h_b_[0-9a-f]+ "
                                      "[0-9]{7,} bytes, pt2h_b_[0-9a-f]+ -> pt2h_a_[0-9a-f]+ "
                                      "[0-9]{7,} bytes"))
      << r.output;
  EXPECT_THAT(r.output, HasSubstr("2 stages x 1 chunks")) << r.output;
  EXPECT_THAT(r.output, ContainsRegex("PASS: .* params_digest=[0-9a-f]{16} equals the "
                                      "one-process run"))
      << r.output;
  // The digest it compared is the one a plain one-process run prints.
  const auto one = testing::RunPipetrain("train --spec configs/tiny.pbtxt --set output_dir=" +
                                         ::testing::TempDir() + "/two_host_one");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_THAT(r.output,
              HasSubstr("params_digest=" + testing::CheckedFinalDigest(one.output) + " equals"));
  ExpectNamespacesGone(r.output);
}

// The digest check can fail: a "pipetrain" whose pipeline run ends elsewhere.
TEST(TwoHostTest, RejectsADifferentDigest) {
  const std::string fake = FakeBinary("pipetrain_wrong_digest",
                                      "case \"$*\" in\n"
                                      "  *stages=2*) echo 'final: step=1 params_digest=00000000000000ff' ;;\n"
                                      "  *) echo 'final: step=1 params_digest=0123456789abcdef' ;;\n"
                                      "esac\n");
  const auto r = RunCheck(fake, "--time-limit 120 --min-bytes 0" + Workdir("two_host_wrong_digest"));
  if (r.exit_code == kSkipped) GTEST_SKIP() << SkipReason(r.output);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("FAIL: params_digest differs: two hosts 00000000000000ff, "
                                  "one process 0123456789abcdef"));
  ExpectNamespacesGone(r.output);
}

// The traffic check can fail: the fake sends nothing over the veth, so the
// default minimum (1 MB each way) is not met.
TEST(TwoHostTest, RejectsARunWithoutTrafficOverTheVeth) {
  const std::string fake =
      FakeBinary("pipetrain_silent", "echo 'final: step=1 params_digest=0123456789abcdef'\n");
  const auto r = RunCheck(fake, "--time-limit 120" + Workdir("two_host_silent"));
  if (r.exit_code == kSkipped) GTEST_SKIP() << SkipReason(r.output);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, ContainsRegex("FAIL: only [0-9]+ bytes went pt2h_a_[0-9a-f]+ -> "
                                      "pt2h_b_[0-9a-f]+ \\(want >= 1000000\\)"));
  ExpectNamespacesGone(r.output);
}

// It stops by itself: a pipeline run that hangs (on both "hosts") ends at the
// time limit, and the trap kills what was left in the namespaces and deletes
// them.
TEST(TwoHostTest, AHangingRunEndsAtTheTimeLimitAndLeavesNothing) {
  const std::string fake = FakeBinary("pipetrain_hangs",
                                      "case \"$*\" in *stages=2*) sleep 600 ;; esac\n"
                                      "echo 'final: step=1 params_digest=0123456789abcdef'\n");
  const auto start = std::chrono::steady_clock::now();
  const auto r = RunCheck(fake, "--time-limit 15" + Workdir("two_host_hangs"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (r.exit_code == kSkipped) GTEST_SKIP() << SkipReason(r.output);
  EXPECT_EQ(r.exit_code, 124) << r.output;
  EXPECT_LT(seconds, 45) << r.output;
  EXPECT_THAT(r.output, HasSubstr("terminated (SIGTERM, e.g. the time limit)"));
  EXPECT_THAT(r.output, ContainsRegex("killing leftovers in pt2h_b_[0-9a-f]+"));
  ExpectNamespacesGone(r.output);
  // Nothing of the fake still runs (the rank on "host" B included); a zombie
  // left for its new parent to reap runs nothing.
  const auto left =
      testing::RunCommand("ps -eo stat=,pid=,args= | awk '$1 !~ /^Z/ && /pipetrain_hang[s]/'");
  EXPECT_EQ(left.output, "") << left.output;
}

}  // namespace
}  // namespace pipetrain
