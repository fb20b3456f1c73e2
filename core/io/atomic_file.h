// Durable and atomic file output for checkpoints (DESIGN.md decision 6).
//
// On POSIX a file's bytes and its directory entry reach the disk separately:
// write() lands in the page cache, fsync(file) makes the bytes durable, and a
// rename is durable only once the directory holding it is fsynced. A crash
// between any two steps must leave either the old state or the new one, so
// every writer here follows: write to a temporary name, fsync the file,
// rename over the final name, fsync the directory.
#ifndef PIPETRAIN_CORE_IO_ATOMIC_FILE_H_
#define PIPETRAIN_CORE_IO_ATOMIC_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pipetrain {

// Streams bytes into a new file (created or truncated), keeping the running
// size and CRC-32C, and makes them durable on Finish(). Large tensors go
// straight from their memory to the file, never through one big string.
// Destroying an unfinished writer closes the file without fsync.
class DurableFileWriter {
 public:
  // `exclusive`: fail with AlreadyExists instead of truncating a file that
  // is already there (someone else is writing it). Either way only a regular
  // file is written: a symbolic link is not followed, and a FIFO or device
  // already at `path` is refused (opening a FIFO would wait for a reader).
  static absl::StatusOr<DurableFileWriter> Create(const std::string& path, bool exclusive = false);
  DurableFileWriter(DurableFileWriter&& other) noexcept;
  DurableFileWriter& operator=(DurableFileWriter&& other) noexcept;
  DurableFileWriter(const DurableFileWriter&) = delete;
  DurableFileWriter& operator=(const DurableFileWriter&) = delete;
  ~DurableFileWriter();

  absl::Status Append(const void* data, size_t size);
  absl::Status AppendZeros(size_t count);
  // fsync, then close. The writer is spent afterwards.
  absl::Status Finish();

  uint64_t size() const { return size_; }
  uint32_t crc32c() const { return crc_; }
  const std::string& path() const { return path_; }

 private:
  DurableFileWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
};

// Writes `contents` to `path` and fsyncs it (no rename: for files inside a
// directory that is itself renamed into place later).
absl::Status WriteFileDurably(const std::string& path, const std::string& contents);

// Replaces `path` atomically: readers see the old contents or the new, never
// a mix. Writes `path`.tmp, fsyncs it, renames it over `path`, fsyncs the
// parent directory. Refuses a `path` that is not a regular file
// (CheckReplaceable).
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

// OK when `path` does not exist or is a regular file. A rename over a device
// node, FIFO, socket, directory or symbolic link would replace it with a
// regular file (`--out /dev/full` run as root would delete the device), so
// those are refused with FailedPrecondition naming the path and its kind.
absl::Status CheckReplaceable(const std::string& path);

// fsync of a directory: makes the entries created, renamed or removed in it durable.
absl::Status SyncDirectory(const std::string& dir);

// rename(2) followed by an fsync of the destination's parent directory (and
// of the source's, when it differs).
absl::Status RenameDurably(const std::string& from, const std::string& to);

// The whole file; NotFound naming the path when it cannot be opened.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// The directory part of `path` ("." when it has none).
std::string ParentDirectory(const std::string& path);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_IO_ATOMIC_FILE_H_
