#include "core/io/event_file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/io/crc32c.h"
#include "core/util/log.h"
#include "proto/tensorboard_event.pb.h"

namespace pipetrain {
namespace {

constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;
// The version string TensorBoard expects in the first record; readers treat
// files without it as the legacy format.
constexpr char kFileVersion[] = "brain.Event:2";
// Enough for every writer a run could open within one second.
constexpr int kMaxNameSuffix = 1000;

void AppendLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
}

double WallTimeNow() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  // A host name never holds '/', but a file name must not either.
  std::string host(name);
  for (char& c : host) {
    if (c == '/') c = '_';
  }
  return host;
}

absl::Status ErrnoError(const std::string& what, const std::string& path, int err) {
  const std::string message =
      absl::StrCat(what, " the TensorBoard event file ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(message);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

}  // namespace

uint32_t MaskedCrc32c(const void* data, size_t size) {
  const uint32_t crc = Crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta;
}

std::string FrameTfRecord(const std::string& data) {
  std::string record;
  record.reserve(data.size() + 16);
  AppendLittleEndian(data.size(), 8, &record);
  AppendLittleEndian(MaskedCrc32c(record.data(), 8), 4, &record);
  record += data;
  AppendLittleEndian(MaskedCrc32c(data.data(), data.size()), 4, &record);
  return record;
}

absl::StatusOr<std::unique_ptr<EventFileWriter>> EventFileWriter::Open(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create the directory ", dir, " for TensorBoard event files: ", error.message()));
  }
  const std::string base =
      absl::StrCat(dir, "/events.out.tfevents.", absl::ToUnixSeconds(absl::Now()), ".", HostName());
  for (int suffix = 0; suffix <= kMaxNameSuffix; ++suffix) {
    const std::string path = suffix == 0 ? base : absl::StrCat(base, ".", suffix);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return ErrnoError("cannot create", path, errno);
    std::unique_ptr<EventFileWriter> writer(new EventFileWriter(path, fd));
    tensorboard::Event event;
    event.set_wall_time(WallTimeNow());
    event.set_file_version(kFileVersion);
    absl::Status status = writer->AddEventBytes(event.SerializeAsString());
    if (status.ok()) status = writer->Flush();
    if (!status.ok()) return status;
    return writer;
  }
  return absl::AlreadyExistsError(
      absl::StrCat("cannot find a free TensorBoard event file name: ", base, " and ",
                   kMaxNameSuffix, " suffixed names exist already"));
}

EventFileWriter::~EventFileWriter() {
  if (fd_ < 0) return;
  (void)Flush();
  ::close(fd_);
}

absl::Status EventFileWriter::AddScalars(int64_t step, const ScalarList& scalars) {
  tensorboard::Event event;
  event.set_wall_time(WallTimeNow());
  event.set_step(step);
  tensorboard::Summary* summary = event.mutable_summary();
  for (const auto& [tag, value] : scalars) {
    tensorboard::Summary::Value* entry = summary->add_value();
    entry->set_tag(tag);
    // simple_value sits in a oneof, so a 0 is still written (and read back
    // as a scalar, not as a value of no kind).
    entry->set_simple_value(static_cast<float>(value));
  }
  return AddEventBytes(event.SerializeAsString());
}

absl::Status EventFileWriter::AddEventBytes(const std::string& serialized_event) {
  if (!failure_.ok()) return failure_;
  pending_ += FrameTfRecord(serialized_event);
  return absl::OkStatus();
}

absl::Status EventFileWriter::Flush() {
  if (!failure_.ok()) return failure_;
  size_t written = 0;
  while (written < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + written, pending_.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      failure_ = ErrnoError("cannot write", path_, errno);
      return failure_;
    }
    written += static_cast<size_t>(n);
  }
  pending_.clear();
  return absl::OkStatus();
}

void BestEffortEventLog::Open(const std::string& dir) {
  if (dir.empty()) return;
  absl::StatusOr<std::unique_ptr<EventFileWriter>> writer = EventFileWriter::Open(dir);
  if (!writer.ok()) {
    Fail(writer.status());
    return;
  }
  writer_ = *std::move(writer);
}

void BestEffortEventLog::Add(int64_t step, const ScalarList& scalars) {
  if (writer_ == nullptr) return;
  absl::Status status = writer_->AddScalars(step, scalars);
  if (status.ok()) status = writer_->Flush();
  if (!status.ok()) Fail(status);
}

void BestEffortEventLog::Fail(const absl::Status& status) {
  LogWarning("events",
             "%s; training goes on without TensorBoard curves (the metrics file still has them)",
             status.ToString());
  writer_.reset();
}

}  // namespace pipetrain
