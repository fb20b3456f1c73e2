#include "models/checkpoint_layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"
#include "models/checkpoint.h"

namespace pipetrain::checkpoint_layout {

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

int64_t ParseStepDirName(const std::string& name) {
  absl::string_view rest(name);
  if (!absl::ConsumePrefix(&rest, "step_") || rest.empty()) return -1;
  if (!std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  int64_t step = -1;
  return absl::SimpleAtoi(rest, &step) ? step : -1;
}

bool IsSafeName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool HasSuffix(const std::string& s, absl::string_view suffix) {
  return absl::EndsWith(absl::string_view(s), suffix);
}

std::string ShapeOf(const CheckpointTensor& t) {
  return ShapeString(Shape(t.shape().begin(), t.shape().end()));
}

std::string Describe(const CheckpointTensor& t) {
  return absl::StrCat(t.name(), " (", TensorRoleLabel(t.role()), ")");
}

absl::StatusOr<DType> DTypeFromName(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f64") return DType::kF64;
  return absl::DataLossError(absl::StrCat("unknown dtype '", name, "' (expected f32 or f64)"));
}

std::string ListProblems(const std::vector<std::string>& problems) {
  std::vector<std::string> shown(problems.begin(),
                                 problems.begin() + std::min(problems.size(), kMaxListedProblems));
  std::string text = absl::StrJoin(shown, "\n  ");
  if (problems.size() > shown.size()) {
    absl::StrAppend(&text, "\n  ... and ", problems.size() - shown.size(), " more");
  }
  return text;
}

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

absl::StatusOr<std::string> ReadLatest(const std::string& run_dir) {
  const std::string path = JoinPath(run_dir, kLatest);
  // "step_<N>\n" is a few bytes; anything long is not a `latest` file.
  PT_ASSIGN_OR_RETURN(const std::string text, ReadCheckpointFile(run_dir, kLatest, 4096));
  const std::string name(absl::StripAsciiWhitespace(text));
  if (ParseStepDirName(name) < 0) {
    return absl::DataLossError(
        absl::StrCat(path, " holds '", name, "', not the name of a step directory (step_<N>)"));
  }
  return name;
}

absl::StatusOr<int> OpenCheckpointFile(const std::string& dir, const std::string& name,
                                       int64_t* size) {
  namespace fs = std::filesystem;
  const std::string path = JoinPath(dir, name);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    const std::string message = absl::StrCat(path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::DataLossError(message);
  }
  if (S_ISLNK(st.st_mode)) {
    // A link inside the directory (say, to a file deduplicated by hand) is
    // fine; one that leads elsewhere would let a checkpoint read any file.
    std::error_code target_error, base_error;
    const fs::path target = fs::canonical(path, target_error);
    const fs::path base = fs::canonical(dir, base_error);
    const fs::path rel = target.lexically_relative(base);
    if (target_error || base_error || rel.empty() || *rel.begin() == "..") {
      return absl::DataLossError(
          absl::StrCat(path, " is a symbolic link that leads out of the checkpoint directory ", dir,
                       "; a checkpoint holds only its own files: replace the link with the file"));
    }
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer. Regular files
  // ignore it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return absl::DataLossError(absl::StrCat(path, ": ", std::strerror(err)));
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(
        path,
        " is not a regular file (a FIFO, device, socket or directory); a checkpoint holds "
        "only regular files: replace it with the file the manifest lists"));
  }
  *size = static_cast<int64_t>(st.st_size);
  return fd;
}

absl::StatusOr<std::string> ReadCheckpointFile(const std::string& dir, const std::string& name,
                                               int64_t max_bytes) {
  int64_t size = 0;
  PT_ASSIGN_OR_RETURN(const int fd, OpenCheckpointFile(dir, name, &size));
  const std::string path = JoinPath(dir, name);
  if (size > max_bytes) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(path, " is ", size, " bytes, more than the ", max_bytes,
                                            " such a file can be: it is not one"));
  }
  std::string contents(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::read(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : 0;
      ::close(fd);
      return absl::DataLossError(
          absl::StrCat("cannot read ", path, ": ", n < 0 ? std::strerror(err) : "it shrank"));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return contents;
}

std::string SealManifest(const std::string& body) {
  const uint32_t crc = Crc32c(body.data(), body.size());
  std::string sealed = body;
  sealed.push_back(static_cast<char>(0x7d));  // (15 << 3) | wire type 5 (fixed32)
  for (int i = 0; i < 4; ++i) sealed.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return sealed;
}

bool ManifestSeal(const std::string& bytes, uint32_t* stored, uint32_t* computed) {
  if (bytes.size() < kManifestSealBytes) return false;
  const size_t body = bytes.size() - kManifestSealBytes;
  if (static_cast<unsigned char>(bytes[body]) != 0x7d) return false;
  uint32_t crc = 0;
  for (int i = 0; i < 4; ++i) {
    crc |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[body + 1 + i])) << (8 * i);
  }
  *stored = crc;
  *computed = Crc32c(bytes.data(), body);
  return true;
}

bool CheckedMul(int64_t a, int64_t b, int64_t* out) {
  if (a < 0 || b < 0) return false;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

bool CheckedAdd(int64_t a, int64_t b, int64_t* out) {
  if (a < 0 || b < 0 || a > std::numeric_limits<int64_t>::max() - b) return false;
  *out = a + b;
  return true;
}

}  // namespace pipetrain::checkpoint_layout
