#include "fuzz/fuzz_temp_dir.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

namespace pipetrain::fuzz {
namespace {

namespace fs = std::filesystem;

std::string MakeDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pipetrain-fuzz-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    std::perror("pipetrain fuzz: mkdtemp");
    std::abort();
  }
  std::string dir(buffer.data());
  // libFuzzer ends a normal run through exit(), which runs this; a crash
  // leaves the directory behind next to the crash file, which helps replay.
  static std::string to_remove;
  to_remove = dir;
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(to_remove, ec);
  });
  return dir;
}

}  // namespace

const std::string& FuzzTempDir() {
  static const std::string dir = MakeDir();
  return dir;
}

void ClearFuzzTempDir() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(FuzzTempDir(), ec)) {
    fs::remove_all(entry.path(), ec);
  }
}

std::string WriteFuzzFile(const std::string& name, std::string_view bytes) {
  const std::string path = FuzzTempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "pipetrain fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

void Explain(const char* what, const absl::Status& status) {
  static const bool explain = std::getenv("PIPETRAIN_FUZZ_EXPLAIN") != nullptr;
  if (explain) std::fprintf(stderr, "[fuzz] %s: %s\n", what, status.ToString().c_str());
}

}  // namespace pipetrain::fuzz
