// Writes gettext .mo files byte by byte, in either byte order, so that the
// reader is tested against files built independently of it (and corrupted
// on purpose).
#ifndef PIPETRAIN_TESTS_TESTING_MO_WRITER_H_
#define PIPETRAIN_TESTS_TESTING_MO_WRITER_H_

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace pipetrain::testing {

// One entry as stored: the original is [ctxt "\x04"] msgid ["\0" plural],
// the translation msgstr or msgstr[0] "\0" msgstr[1] ...
struct RawMoEntry {
  std::string original;
  std::string translation;
};

inline void PutU32(std::string* out, size_t at, uint32_t v, bool big_endian) {
  for (int i = 0; i < 4; ++i) {
    const int shift = big_endian ? 24 - 8 * i : 8 * i;
    (*out)[at + i] = static_cast<char>((v >> shift) & 0xff);
  }
}

// The layout msgfmt writes: 28-byte header, the two tables, then the
// strings, each followed by a NUL. No hash table (size 0).
inline std::string BuildMo(const std::vector<RawMoEntry>& entries, bool big_endian,
                           uint32_t revision = 0) {
  const uint32_t n = static_cast<uint32_t>(entries.size());
  const uint32_t originals = 28, translations = 28 + 8 * n;
  std::string out(28 + 16 * n, '\0');
  PutU32(&out, 0, 0x950412de, big_endian);
  PutU32(&out, 4, revision, big_endian);
  PutU32(&out, 8, n, big_endian);
  PutU32(&out, 12, originals, big_endian);
  PutU32(&out, 16, translations, big_endian);
  PutU32(&out, 20, 0, big_endian);
  PutU32(&out, 24, static_cast<uint32_t>(out.size()), big_endian);
  for (int table = 0; table < 2; ++table) {
    for (uint32_t i = 0; i < n; ++i) {
      const std::string& s = table == 0 ? entries[i].original : entries[i].translation;
      const uint32_t at = (table == 0 ? originals : translations) + 8 * i;
      PutU32(&out, at, static_cast<uint32_t>(s.size()), big_endian);
      PutU32(&out, at + 4, static_cast<uint32_t>(out.size()), big_endian);
      out += s;
      out.push_back('\0');
    }
  }
  return out;
}

inline std::string MoHeader(const std::string& charset, const std::string& plural_forms) {
  std::string header = "Project-Id-Version: test 1.0\nMIME-Version: 1.0\n";
  header += "Content-Type: text/plain; charset=" + charset + "\n";
  header += "Content-Transfer-Encoding: 8bit\n";
  if (!plural_forms.empty()) header += "Plural-Forms: " + plural_forms + "\n";
  return header;
}

inline bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  return static_cast<bool>(out);
}

}  // namespace pipetrain::testing

#endif  // PIPETRAIN_TESTS_TESTING_MO_WRITER_H_
