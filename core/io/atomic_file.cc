#include "core/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

absl::Status ErrnoError(const std::string& what, const std::string& path, int err) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

}  // namespace

absl::StatusOr<DurableFileWriter> DurableFileWriter::Create(const std::string& path,
                                                            bool exclusive) {
  // Refused before open(): O_TRUNC must not touch anything but a regular file.
  PT_RETURN_IF_ERROR(CheckReplaceable(path));
  const int flags =
      O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (exclusive ? O_EXCL : O_TRUNC);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
    if (errno == ELOOP || errno == ENXIO) PT_RETURN_IF_ERROR(CheckReplaceable(path));
    return ErrnoError("cannot create", path, errno);
  }
  // Whatever raced in between the check and open(), what was opened must be
  // a regular file; writes to it then block as usual.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a regular file; refusing to write into it"));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return DurableFileWriter(path, fd);
}

DurableFileWriter::DurableFileWriter(DurableFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      crc_(other.crc_) {}

DurableFileWriter& DurableFileWriter::operator=(DurableFileWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    crc_ = other.crc_;
  }
  return *this;
}

DurableFileWriter::~DurableFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status DurableFileWriter::Append(const void* data, size_t size) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is already closed"));
  const auto* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path_, errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  crc_ = Crc32cExtend(crc_, data, size);
  size_ += size;
  return absl::OkStatus();
}

absl::Status DurableFileWriter::AppendZeros(size_t count) {
  static constexpr char kZeros[256] = {};
  while (count > 0) {
    const size_t n = count < sizeof(kZeros) ? count : sizeof(kZeros);
    PT_RETURN_IF_ERROR(Append(kZeros, n));
    count -= n;
  }
  return absl::OkStatus();
}

absl::Status DurableFileWriter::Finish() {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is already closed"));
  const int fd = std::exchange(fd_, -1);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("cannot fsync", path_, err);
  }
  // close() can report a deferred write error (NFS); it must not be ignored.
  if (::close(fd) != 0) return ErrnoError("cannot close", path_, errno);
  return absl::OkStatus();
}

absl::Status WriteFileDurably(const std::string& path, const std::string& contents) {
  PT_ASSIGN_OR_RETURN(DurableFileWriter writer, DurableFileWriter::Create(path));
  PT_RETURN_IF_ERROR(writer.Append(contents.data(), contents.size()));
  return writer.Finish();
}

absl::Status CheckReplaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError("cannot examine", path, errno);
  }
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  const char* kind = S_ISLNK(st.st_mode)    ? "a symbolic link"
                     : S_ISDIR(st.st_mode)  ? "a directory"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a regular file";
  return absl::FailedPreconditionError(absl::StrCat(
      path, " is ", kind,
      "; pipetrain writes files by replacing them and would replace it with a regular file: "
      "give the path of a regular file, or of one that does not exist yet"));
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  PT_RETURN_IF_ERROR(CheckReplaceable(path));
  const std::string tmp = path + ".tmp";
  PT_RETURN_IF_ERROR(WriteFileDurably(tmp, contents));
  return RenameDurably(tmp, path);
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems cannot fsync a directory (EINVAL); their renames are
  // as durable as they get, so that is not an error.
  if (rc != 0 && err != EINVAL) return ErrnoError("cannot fsync directory", dir, err);
  return absl::OkStatus();
}

std::string ParentDirectory(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return trimmed.substr(0, slash);
}

absl::Status RenameDurably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(absl::StrCat("cannot rename ", from, " to"), to, errno);
  }
  const std::string to_dir = ParentDirectory(to);
  PT_RETURN_IF_ERROR(SyncDirectory(to_dir));
  const std::string from_dir = ParentDirectory(from);
  if (from_dir != to_dir) PT_RETURN_IF_ERROR(SyncDirectory(from_dir));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  std::string contents;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) contents.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError("cannot read", path, err);
    }
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return contents;
}

}  // namespace pipetrain
