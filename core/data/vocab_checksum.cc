#include "core/data/vocab_checksum.h"

#include <cerrno>
#include <cstdint>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

std::string SidecarText(const std::string& contents) {
  return absl::StrCat("crc32c\t", Crc32cHex(Crc32c(contents)), "\tbytes\t", contents.size(), "\n");
}

}  // namespace

std::string VocabChecksumPath(const std::string& vocab_path) { return vocab_path + ".crc32c"; }

absl::Status WriteVocabChecksum(const std::string& vocab_path) {
  PT_ASSIGN_OR_RETURN(const std::string contents, ReadFileToString(vocab_path));
  return WriteFileAtomically(VocabChecksumPath(vocab_path), SidecarText(contents));
}

absl::StatusOr<VocabCheck> CheckVocabChecksum(const std::string& vocab_path,
                                              const std::string& remedy) {
  const std::string sidecar_path = VocabChecksumPath(vocab_path);
  std::error_code error;
  if (!std::filesystem::exists(sidecar_path, error)) return VocabCheck::kNoChecksum;
  // A sidecar is one short line: refuse anything else before reading it all.
  const auto sidecar_size = std::filesystem::file_size(sidecar_path, error);
  if (error || sidecar_size > 256) {
    return absl::DataLossError(
        absl::StrCat(sidecar_path, " is not a vocabulary checksum (",
                     error ? error.message() : absl::StrCat(sidecar_size, " bytes"),
                     "): the checksum file is damaged; ", remedy));
  }
  PT_ASSIGN_OR_RETURN(const std::string sidecar, ReadFileToString(sidecar_path));
  PT_ASSIGN_OR_RETURN(const std::string contents, ReadFileToString(vocab_path));
  const std::string expected = SidecarText(contents);
  if (sidecar == expected) return VocabCheck::kVerified;
  // Every byte of the sidecar is compared, so a flip there is caught too;
  // the message quotes both lines so a reader can tell which file changed.
  std::string said = sidecar;
  if (!said.empty() && said.back() == '\n') said.pop_back();
  std::string have = expected;
  have.pop_back();
  return absl::DataLossError(absl::StrCat(
      vocab_path, " does not match its checksum file ", sidecar_path, " (the file has '",
      absl::CHexEscape(have), "', the checksum file says '", absl::CHexEscape(said),
      "'): the vocabulary is corrupted (or its checksum file is) and its pieces cannot be "
      "trusted; ",
      remedy));
}

}  // namespace pipetrain
