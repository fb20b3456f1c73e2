// The checksum kept beside a vocabulary file that travels without its
// shards: a run's OUTPUT_DIR/spm.model, which translate, eval and resume
// read. The shards' own vocabulary is vouched for by their manifest
// (vocab_hash, sealed by the manifest's CRC-32C); a copy in a run directory
// has no manifest, so it gets a sidecar `spm.model.crc32c`:
//
//   crc32c<TAB>0x<8 hex digits><TAB>bytes<TAB><size>\n
//
// A SentencePiece model is a protobuf: many flipped bits still parse (the
// issue measured 17 of 120) and would silently change pieces or scores.
#ifndef PIPETRAIN_CORE_DATA_VOCAB_CHECKSUM_H_
#define PIPETRAIN_CORE_DATA_VOCAB_CHECKSUM_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pipetrain {

// `vocab_path` + ".crc32c".
std::string VocabChecksumPath(const std::string& vocab_path);

// Writes the sidecar of the file at `vocab_path` atomically (write, fsync,
// rename).
absl::Status WriteVocabChecksum(const std::string& vocab_path);

enum class VocabCheck {
  kVerified,    // the sidecar exists and matches every byte
  kNoChecksum,  // no sidecar: written before pipetrain kept one
};

// Compares the file at `vocab_path` with its sidecar. A mismatch, or a
// sidecar that is not one line of the format above, is DataLoss naming both
// files and ending with `remedy` (what the caller's user should do).
absl::StatusOr<VocabCheck> CheckVocabChecksum(const std::string& vocab_path,
                                              const std::string& remedy);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_VOCAB_CHECKSUM_H_
