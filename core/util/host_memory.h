// Host memory as the kernel counts it: this process's resident memory
// (/proc/self/status), what a rank really holds, to set beside `pipetrain
// plan`'s prediction; and the memory still available to new allocations
// (/proc/meminfo). Linux only; elsewhere the readers return an error.
#ifndef PIPETRAIN_CORE_UTIL_HOST_MEMORY_H_
#define PIPETRAIN_CORE_UTIL_HOST_MEMORY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace pipetrain {

// VmRSS: resident bytes now.
absl::StatusOr<int64_t> ResidentBytes();
// VmHWM: the most resident bytes so far (the high-water mark).
absl::StatusOr<int64_t> PeakResidentBytes();
// Starts the high-water mark again from what is resident now (writes 5 to
// /proc/self/clear_refs, Linux 4.0 and later), so a later peak says what
// was allocated after this point.
absl::Status ResetPeakResident();
// MemAvailable: what the machine can still give without swapping.
absl::StatusOr<int64_t> AvailableBytes();
// The value in bytes of a "Name:   1234 kB" line of a /proc text (status,
// meminfo); an error naming `field` when it is missing or malformed.
absl::StatusOr<int64_t> ProcFieldBytes(const std::string& proc_text, const std::string& field);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_UTIL_HOST_MEMORY_H_
