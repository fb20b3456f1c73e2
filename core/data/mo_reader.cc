#include "core/data/mo_reader.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pipetrain {
namespace {

constexpr uint32_t kSwappedMagic = 0xde120495;
constexpr uint64_t kHeaderBytes = 28;

class ByteReader {
 public:
  ByteReader(std::string_view bytes, bool big_endian) : bytes_(bytes), big_endian_(big_endian) {}

  // The caller has checked that [offset, offset + 4) lies inside the file.
  uint32_t U32(uint64_t offset) const {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes_.data() + offset);
    if (big_endian_) {
      return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
    }
    return uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | uint32_t{p[0]};
  }

 private:
  std::string_view bytes_;
  bool big_endian_;
};

absl::Status Corrupt(std::string_view name, uint64_t offset, const std::string& what) {
  return absl::DataLossError(absl::StrFormat("%s: not a valid .mo file at offset %d (0x%x): %s",
                                             std::string(name), offset, offset, what));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool SameIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> SplitNul(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '\0') {
      parts.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

}  // namespace

absl::StatusOr<MoCatalog> ParseMo(std::string_view bytes, std::string_view name) {
  const uint64_t size = bytes.size();
  if (size < 4) {
    return Corrupt(name, 0, absl::StrCat("the file has ", size, " bytes, too few for the magic"));
  }
  MoCatalog catalog;
  const uint32_t magic_le = ByteReader(bytes, false).U32(0);
  if (magic_le == kMoMagic) {
    catalog.big_endian = false;
  } else if (magic_le == kSwappedMagic) {
    catalog.big_endian = true;
  } else {
    return Corrupt(
        name, 0,
        absl::StrFormat("magic 0x%08x, expected 0x950412de in either byte order", magic_le));
  }
  if (size < kHeaderBytes) {
    return Corrupt(name, size,
                   absl::StrCat("truncated header: ", size, " bytes, need ", kHeaderBytes));
  }
  const ByteReader in(bytes, catalog.big_endian);
  catalog.revision = in.U32(4);
  // Major revisions 0 and 1 share the layout read here; 1 only adds tables.
  if ((catalog.revision >> 16) > 1) {
    return Corrupt(name, 4,
                   absl::StrFormat("unsupported revision %d.%d (this reader knows 0 and 1)",
                                   catalog.revision >> 16, catalog.revision & 0xffff));
  }
  const uint64_t count = in.U32(8);
  const uint64_t originals = in.U32(12);
  const uint64_t translations = in.U32(16);
  for (const auto& [table, field_offset] :
       {std::pair{originals, uint64_t{12}}, std::pair{translations, uint64_t{16}}}) {
    // 64-bit arithmetic: a corrupt count cannot wrap around the check.
    if (table + 8 * count > size) {
      return Corrupt(
          name, field_offset,
          absl::StrCat("a table of ", count, " strings at offset ", table, " ends at byte ",
                       table + 8 * count, ", past the end of the ", size, "-byte file"));
    }
  }
  auto string_at = [&](uint64_t table, uint64_t i,
                       std::string_view which) -> absl::StatusOr<std::string_view> {
    const uint64_t entry = table + 8 * i;
    const uint64_t length = in.U32(entry);
    const uint64_t offset = in.U32(entry + 4);
    if (offset + length > size) {
      return Corrupt(name, entry,
                     absl::StrCat(std::string(which), " string ", i, " is bytes [", offset, ", ",
                                  offset + length, "), past the end of the ", size, "-byte file"));
    }
    return bytes.substr(offset, length);
  };

  catalog.entries.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    auto original = string_at(originals, i, "original");
    if (!original.ok()) return original.status();
    auto translation = string_at(translations, i, "translated");
    if (!translation.ok()) return translation.status();
    std::string_view id = *original;
    MoEntry entry;
    if (const size_t eot = id.find('\x04'); eot != std::string_view::npos) {
      entry.has_context = true;
      entry.context = std::string(id.substr(0, eot));
      id = id.substr(eot + 1);
    }
    if (id.empty() && !entry.has_context) {
      catalog.header = std::string(*translation);
      continue;
    }
    if (const size_t nul = id.find('\0'); nul != std::string_view::npos) {
      entry.plural = true;
      entry.msgid = std::string(id.substr(0, nul));
      const std::string_view plural = id.substr(nul + 1);
      entry.msgid_plural =
          std::string(plural.substr(0, std::min(plural.find('\0'), plural.size())));
      entry.msgstr = SplitNul(*translation);
    } else {
      entry.msgid = std::string(id);
      entry.msgstr.emplace_back(*translation);
    }
    catalog.entries.push_back(std::move(entry));
  }
  return catalog;
}

absl::StatusOr<MoCatalog> ReadMoFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ParseMo(contents.str(), path);
}

std::string MoHeaderField(std::string_view header, std::string_view field) {
  size_t start = 0;
  while (start < header.size()) {
    size_t end = header.find('\n', start);
    if (end == std::string_view::npos) end = header.size();
    const std::string_view line = header.substr(start, end - start);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && SameIgnoringCase(Trim(line.substr(0, colon)), field)) {
      return std::string(Trim(line.substr(colon + 1)));
    }
    start = end + 1;
  }
  return "";
}

std::string MoCharset(std::string_view header) {
  const std::string type = MoHeaderField(header, "Content-Type");
  std::string lowered = type;
  for (char& c : lowered) c = absl::ascii_tolower(static_cast<unsigned char>(c));
  const size_t at = lowered.find("charset=");
  if (at == std::string::npos) return "";
  std::string_view value = std::string_view(type).substr(at + 8);
  const size_t end = value.find_first_of("; \t");
  return std::string(value.substr(0, std::min(end, value.size())));
}

}  // namespace pipetrain
