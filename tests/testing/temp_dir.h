// A fresh directory for one test, removed when the test ends, reading a
// whole file back, and counting this machine's gettext locales: what tests
// that write corpora, vocabularies or shards need.
#ifndef PIPETRAIN_TESTS_TESTING_TEMP_DIR_H_
#define PIPETRAIN_TESTS_TESTING_TEMP_DIR_H_

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pipetrain::testing {

// Named after the running test (and the process, so parallel CTest runs of
// one executable never share it): <tmp>/<prefix>_<pid>_<suite>_<test>.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Parameterized names hold '/' ("Configs/TinyModelTest"): one level only.
    std::string name = absl::StrCat(info->test_suite_name(), "_", info->name());
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = std::filesystem::temp_directory_path() / absl::StrCat(prefix, "_", getpid(), "_", name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Locale directories with an LC_MESSAGES folder under `root`: tests that
// read this machine's gettext catalogs skip below 20 (a stripped image).
inline int CountGettextLocales(const std::string& root) {
  int locales = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    locales += std::filesystem::is_directory(it->path() / "LC_MESSAGES", ec);
  }
  return locales;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_TEMP_DIR_H_
