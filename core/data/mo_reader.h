// Reader of GNU gettext's compiled catalogs (.mo). The format: a 28-byte
// header (magic 0x950412de, written in the byte order of the machine that
// compiled it; revision; string count N; offsets of the original-string and
// translation tables; hash table size and offset), then two tables of N
// (length, offset) pairs. An original string is [msgctxt "\x04"] msgid
// ["\0" msgid_plural]; a translation is msgstr or, for a plural entry,
// msgstr[0] "\0" msgstr[1] ... The entry with an empty msgid and no context
// is the catalog's header (Content-Type, Plural-Forms, ...).
//
// Every offset and length is checked against the file size: a truncated or
// corrupt file is an error naming the file and the offset, never a crash.
// The hash table is not needed to list every entry and is not read; the
// extra "system-dependent" strings of revision 1 (msgids with <PRIu64> and
// the like) are not read either.
#ifndef PIPETRAIN_CORE_DATA_MO_READER_H_
#define PIPETRAIN_CORE_DATA_MO_READER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace pipetrain {

inline constexpr uint32_t kMoMagic = 0x950412de;

struct MoEntry {
  bool has_context = false;
  std::string context;  // msgctxt
  std::string msgid;    // the singular English source
  bool plural = false;
  std::string msgid_plural;
  // One string; for a plural entry one per plural form of the language, in
  // the order its Plural-Forms formula numbers them.
  std::vector<std::string> msgstr;
};

struct MoCatalog {
  bool big_endian = false;
  uint32_t revision = 0;
  std::string header;            // the msgstr of the header entry; empty when there is none
  std::vector<MoEntry> entries;  // in file order (sorted by msgid), header excluded
};

// Parses a whole file's bytes; `name` is used in error messages.
absl::StatusOr<MoCatalog> ParseMo(std::string_view bytes, std::string_view name);
absl::StatusOr<MoCatalog> ReadMoFile(const std::string& path);

// The value of a header field ("Plural-Forms", "Content-Type"), trimmed;
// empty when the field is absent. Field names compare case-insensitively.
std::string MoHeaderField(std::string_view header, std::string_view field);
// The charset named in Content-Type ("UTF-8", "ISO-8859-1"); empty when absent.
std::string MoCharset(std::string_view header);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_MO_READER_H_
