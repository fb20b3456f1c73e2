#include "fuzz/file_bundle.h"

#include <algorithm>

namespace pipetrain::fuzz {

std::vector<std::string_view> SplitBundle(const uint8_t* data, size_t size, size_t max_files) {
  std::vector<std::string_view> files;
  size_t at = 0;
  while (files.size() < max_files && size - at >= 4) {
    const uint32_t length = uint32_t{data[at]} | uint32_t{data[at + 1]} << 8 |
                            uint32_t{data[at + 2]} << 16 | uint32_t{data[at + 3]} << 24;
    at += 4;
    const size_t take = std::min<size_t>(length, size - at);
    files.emplace_back(reinterpret_cast<const char*>(data) + at, take);
    at += take;
  }
  return files;
}

}  // namespace pipetrain::fuzz
