// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78): the
// checksum of every checkpoint file (DESIGN.md decision 6). Chosen over the
// zlib CRC-32 because it detects more error patterns in long messages and is
// what storage formats (iSCSI, ext4 metadata) and SSE4.2's crc32 instruction
// compute. Software slicing-by-8: a checkpoint write stays bounded by the
// disk, not by the checksum (docs/checkpoints.md has the measured rate).
#ifndef PIPETRAIN_CORE_IO_CRC32C_H_
#define PIPETRAIN_CORE_IO_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace pipetrain {

// Extends `crc` (the CRC-32C of the bytes seen so far; 0 for none) by `size`
// bytes at `data`. Crc32cExtend(Crc32cExtend(0, a), b) == CRC of a then b.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

inline uint32_t Crc32c(const void* data, size_t size) { return Crc32cExtend(0, data, size); }
inline uint32_t Crc32c(const std::string& bytes) { return Crc32c(bytes.data(), bytes.size()); }

// "0xe3069283": how manifests and messages print a CRC.
std::string Crc32cHex(uint32_t crc);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_IO_CRC32C_H_
