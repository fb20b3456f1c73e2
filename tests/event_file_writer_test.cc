// TensorBoard event files: the masked CRC and the TFRecord framing against
// values worked out by hand, the file's records parsed back here (both
// checksums, the version record, every scalar), a second writer in the same
// second, errors that name the file, the best-effort log of the trainer,
// and (TensorBoardReadsEveryValue) TensorBoard's own loader on our files.
#include "core/io/event_file_writer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/io/crc32c.h"
#include "gtest/gtest.h"
#include "proto/tensorboard_event.pb.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;

// A fresh directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            absl::StrCat("event_file_writer_test_", getpid(), "_", info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// The mask written out again here, from the format's description, so the
// test does not trust the writer's own MaskedCrc32c.
uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

uint64_t LittleEndian(const std::string& bytes, size_t at, int width) {
  uint64_t value = 0;
  for (int i = width - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  return value;
}

// Splits a TFRecord stream into its records, checking both checksums of each.
std::vector<std::string> ParseRecords(const std::string& file) {
  std::vector<std::string> records;
  size_t at = 0;
  while (at < file.size()) {
    EXPECT_LE(at + 12, file.size()) << "a truncated header at byte " << at;
    if (at + 12 > file.size()) break;
    const uint64_t length = LittleEndian(file, at, 8);
    EXPECT_EQ(LittleEndian(file, at + 8, 4), Mask(Crc32c(file.data() + at, 8)))
        << "length CRC of the record at byte " << at;
    EXPECT_LE(at + 12 + length + 4, file.size()) << "a truncated record at byte " << at;
    if (at + 12 + length + 4 > file.size()) break;
    std::string data = file.substr(at + 12, length);
    EXPECT_EQ(LittleEndian(file, at + 12 + length, 4), Mask(Crc32c(data)))
        << "data CRC of the record at byte " << at;
    records.push_back(std::move(data));
    at += 12 + length + 4;
  }
  return records;
}

std::vector<tensorboard::Event> ParseEvents(const std::string& path) {
  std::vector<tensorboard::Event> events;
  for (const std::string& record : ParseRecords(ReadAll(path))) {
    tensorboard::Event event;
    EXPECT_TRUE(event.ParseFromString(record)) << "record " << events.size() << " of " << path;
    events.push_back(event);
  }
  return events;
}

std::vector<std::string> EventFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

double Now() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

TEST(MaskedCrc32cTest, MatchesHandComputedValues) {
  // CRC-32C of nothing is 0, so its mask is the constant alone.
  EXPECT_EQ(MaskedCrc32c("", 0), 0xa282ead8u);
  // CRC-32C("123456789") = 0xe3069283 (the published check value); rotated
  // right by 15 bits that is 0x25c6060d, plus 0xa282ead8 gives 0xc78ab0e5.
  EXPECT_EQ(Crc32c(std::string("123456789")), 0xe3069283u);
  EXPECT_EQ(MaskedCrc32c("123456789", 9), 0xc78ab0e5u);
}

TEST(FrameTfRecordTest, KnownRecordBytes) {
  const std::string record = FrameTfRecord("123456789");
  // 8 length bytes, 4 CRC bytes, 9 data bytes, 4 CRC bytes.
  ASSERT_EQ(record.size(), 25u);
  EXPECT_EQ(record.substr(0, 8), std::string("\x09\0\0\0\0\0\0\0", 8));
  // The CRC-32C of those eight bytes is 0x872fcb77; masked: 0x3971f937,
  // stored little-endian.
  EXPECT_EQ(Crc32c(record.data(), 8), 0x872fcb77u);
  EXPECT_EQ(record.substr(8, 4), std::string("\x37\xf9\x71\x39", 4));
  EXPECT_EQ(record.substr(12, 9), "123456789");
  EXPECT_EQ(record.substr(21, 4), std::string("\xe5\xb0\x8a\xc7", 4));
  // And the empty record: length 0, then the mask of CRC 0 for no data.
  const std::string empty = FrameTfRecord("");
  ASSERT_EQ(empty.size(), 16u);
  EXPECT_EQ(LittleEndian(empty, 0, 8), 0u);
  EXPECT_EQ(LittleEndian(empty, 8, 4), Mask(Crc32c(empty.data(), 8)));
  EXPECT_EQ(LittleEndian(empty, 12, 4), 0xa282ead8u);
}

TEST(EventFileWriterTest, FileIsNamedForTensorBoardAndStartsWithTheVersion) {
  TempDir dir;
  const double before = Now();
  auto writer = EventFileWriter::Open(dir.str() + "/run/sub");  // created when missing
  const double after = Now();
  ASSERT_TRUE(writer.ok()) << writer.status();
  const std::string name = fs::path((*writer)->path()).filename().string();
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_TRUE(absl::StartsWith(name, "events.out.tfevents.")) << name;
  EXPECT_TRUE(absl::EndsWith(name, absl::StrCat(".", host))) << name;
  const int64_t seconds = std::stoll(name.substr(std::strlen("events.out.tfevents.")));
  EXPECT_GE(seconds, static_cast<int64_t>(std::floor(before)));
  EXPECT_LE(seconds, static_cast<int64_t>(after));

  // Open flushed the first record already: a reader sees a valid file.
  const std::vector<tensorboard::Event> events = ParseEvents((*writer)->path());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(events[0].step(), 0);
  EXPECT_FALSE(events[0].has_summary());
  EXPECT_GE(events[0].wall_time(), before - 1e-3);
  EXPECT_LE(events[0].wall_time(), after + 1e-3);
}

TEST(EventFileWriterTest, HandParsedRoundTrip) {
  TempDir dir;
  const ScalarList first = {{"train/loss", 7.25},
                            {"train/lr", 3e-4},
                            {"train/zero", 0.0},
                            {"train/negative", -1.0 / 3.0}};
  const ScalarList second = {{"train/loss", 6.5}, {"valid/bleu/en-de", 12.3456789}};
  std::string path;
  {
    auto writer = EventFileWriter::Open(dir.str());
    ASSERT_TRUE(writer.ok()) << writer.status();
    path = (*writer)->path();
    const size_t version_only = ReadAll(path).size();
    ASSERT_TRUE((*writer)->AddScalars(10, first).ok());
    // Queued, not written, until Flush.
    EXPECT_EQ(ReadAll(path).size(), version_only);
    ASSERT_TRUE((*writer)->Flush().ok());
    EXPECT_GT(ReadAll(path).size(), version_only);
    // The destructor writes what the last Flush left behind.
    ASSERT_TRUE((*writer)->AddScalars(1LL << 40, second).ok());
  }
  const std::vector<tensorboard::Event> events = ParseEvents(path);
  ASSERT_EQ(events.size(), 3u);
  const std::vector<std::pair<int64_t, ScalarList>> expected = {{10, first}, {1LL << 40, second}};
  for (size_t e = 0; e < expected.size(); ++e) {
    const tensorboard::Event& event = events[e + 1];
    EXPECT_EQ(event.step(), expected[e].first);
    EXPECT_TRUE(event.file_version().empty());
    EXPECT_GE(event.wall_time(), events[0].wall_time());
    ASSERT_TRUE(event.has_summary());
    const ScalarList& scalars = expected[e].second;
    ASSERT_EQ(event.summary().value_size(), static_cast<int>(scalars.size()));
    for (size_t i = 0; i < scalars.size(); ++i) {
      const tensorboard::Summary::Value& value = event.summary().value(i);
      EXPECT_EQ(value.tag(), scalars[i].first);
      // A zero is still marked as a simple value, or TensorBoard skips it.
      EXPECT_TRUE(value.has_simple_value()) << value.tag();
      EXPECT_EQ(value.simple_value(), static_cast<float>(scalars[i].second)) << value.tag();
    }
  }
}

TEST(EventFileWriterTest, SecondWriterInTheSameSecondGetsItsOwnFile) {
  TempDir dir;
  auto a = EventFileWriter::Open(dir.str());
  auto b = EventFileWriter::Open(dir.str());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->path(), (*b)->path());
  ASSERT_TRUE((*a)->AddScalars(1, {{"x", 1}}).ok() && (*a)->Flush().ok());
  ASSERT_TRUE((*b)->AddScalars(2, {{"x", 2}}).ok() && (*b)->Flush().ok());
  EXPECT_EQ(ParseEvents((*a)->path()).size(), 2u);
  EXPECT_EQ(ParseEvents((*b)->path()).size(), 2u);
  EXPECT_EQ(EventFiles(dir.str()).size(), 2u);
}

TEST(EventFileWriterTest, ErrorsNameTheFile) {
  TempDir dir;
  const std::string blocker = dir.str() + "/not_a_directory";
  std::ofstream(blocker) << "x";
  const auto writer = EventFileWriter::Open(blocker + "/run");
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.status().message().find(blocker), std::string::npos) << writer.status();

  // A write error: a file-size limit just above the version record makes
  // the next write fail with EFBIG (SIGXFSZ ignored so it is an error, not
  // a kill); both the failing Flush and every later call name the file.
  auto writer_ok = EventFileWriter::Open(dir.str());
  ASSERT_TRUE(writer_ok.ok()) << writer_ok.status();
  EventFileWriter& limited = **writer_ok;
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = fs::file_size(limited.path()) + 8;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  const absl::Status queued = limited.AddScalars(1, {{"train/loss", 1}});
  const absl::Status flushed = limited.Flush();
  const absl::Status later = limited.AddScalars(2, {{"train/loss", 2}});
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(queued.ok()) << queued;
  ASSERT_FALSE(flushed.ok());
  EXPECT_NE(flushed.message().find(limited.path()), std::string::npos) << flushed;
  EXPECT_EQ(later, flushed);
}

TEST(BestEffortEventLogTest, AFailureIsOneWarningAndNeverAnError) {
  TempDir dir;
  const std::string blocker = dir.str() + "/not_a_directory";
  std::ofstream(blocker) << "x";
  BestEffortEventLog log;
  ::testing::internal::CaptureStderr();
  log.Open(blocker + "/run");
  log.Add(1, {{"train/loss", 1}});
  log.Add(2, {{"train/loss", 2}});
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(log.active());
  EXPECT_EQ(warnings.find("warning: [events]"), warnings.rfind("warning: [events]")) << warnings;
  EXPECT_NE(warnings.find(blocker), std::string::npos) << warnings;

  // No directory: off, silently.
  BestEffortEventLog off;
  off.Open("");
  EXPECT_FALSE(off.active());

  // A working one writes and flushes every point at once.
  BestEffortEventLog on;
  on.Open(dir.str() + "/run");
  ASSERT_TRUE(on.active());
  on.Add(5, {{"train/loss", 4.5}});
  const std::vector<std::string> files = EventFiles(dir.str() + "/run");
  ASSERT_EQ(files.size(), 1u);
  const std::vector<tensorboard::Event> events = ParseEvents(files[0]);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].step(), 5);
  EXPECT_EQ(events[1].summary().value(0).simple_value(), 4.5f);
}

TEST(EventFileWriterTest, TensorBoardReadsEveryValue) {
  const auto probe = RunCommand(
      "python3 -c 'from tensorboard.backend.event_processing.event_accumulator "
      "import EventAccumulator' 2>&1");
  if (probe.exit_code != 0) {
    GTEST_SKIP() << "the Python package tensorboard is not importable by python3 (" << probe.output
                 << "); `python3 -m pip install tensorboard` enables this check";
  }
  TempDir dir;
  // tag -> step -> value, over two files in one run directory (a resumed run).
  std::map<std::string, std::map<int64_t, double>> expected;
  for (int file = 0; file < 2; ++file) {
    auto writer = EventFileWriter::Open(dir.str());
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int64_t step = 1 + 30 * file; step <= 30 * (file + 1); ++step) {
      const ScalarList scalars = {{"train/loss", 10.0 / step},
                                  {"train/lr", 1e-3 * step / 60.0},
                                  {"train/grad_norm", step % 7 == 0 ? 0.0 : -0.1 * step},
                                  {"train/tokens_per_s", 123456.7 + step}};
      for (const auto& [tag, value] : scalars) expected[tag][step] = value;
      ASSERT_TRUE((*writer)->AddScalars(step, scalars).ok());
      if (step % 10 == 0) {
        const ScalarList valid = {{"valid/loss", 5.0 - 0.01 * step},
                                  {"valid/bleu/en-de", 0.5 * step},
                                  {"valid/chrf/en-de", 1e-7 * step}};
        for (const auto& [tag, value] : valid) expected[tag][step] = value;
        ASSERT_TRUE((*writer)->AddScalars(step, valid).ok());
      }
    }
    ASSERT_TRUE((*writer)->Flush().ok());
  }

  const auto read = RunCommand("python3 tests/golden/read_event_file.py " + dir.str());
  ASSERT_EQ(read.exit_code, 0) << read.output;
  std::map<std::string, std::map<int64_t, double>> got;
  std::istringstream lines(read.output);
  std::string kind, tag;
  int64_t step = 0;
  std::string value;
  while (lines >> kind) {
    if (kind != "scalar") {
      std::string rest;
      std::getline(lines, rest);  // a warning TensorBoard printed: not a point
      continue;
    }
    ASSERT_TRUE(lines >> tag >> step >> value) << read.output;
    EXPECT_EQ(got[tag].count(step), 0u) << tag << " step " << step << " read twice";
    got[tag][step] = std::stod(value);
  }
  ASSERT_EQ(got.size(), expected.size()) << read.output;
  int points = 0;
  for (const auto& [name, by_step] : expected) {
    ASSERT_EQ(got[name].size(), by_step.size()) << name;
    for (const auto& [s, v] : by_step) {
      ASSERT_EQ(got[name].count(s), 1u) << name << " step " << s;
      // TensorBoard keeps a 32-bit float; it must be the very float we wrote.
      EXPECT_EQ(static_cast<float>(got[name][s]), static_cast<float>(v)) << name << " step " << s;
      ++points;
    }
  }
  EXPECT_EQ(points, 4 * 60 + 3 * 6);
}

}  // namespace
}  // namespace pipetrain
