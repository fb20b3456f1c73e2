// A whole file mapped read-only into memory. Shards are read through this so
// that opening a corpus costs no copy and ranks on one machine share the
// pages through the page cache.
#ifndef PIPETRAIN_CORE_DATA_MAPPED_FILE_H_
#define PIPETRAIN_CORE_DATA_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace pipetrain {

class MappedFile {
 public:
  // Errors name the file and the system's reason.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const uint8_t* data_;  // nullptr for an empty file (mmap refuses length 0)
  size_t size_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_MAPPED_FILE_H_
