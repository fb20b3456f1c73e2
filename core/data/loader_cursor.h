// Where a MultilingualLoader stands in its stream of batches: a few
// integers, saved with every checkpoint so a resumed run continues with the
// very batch it would have drawn next. Text form, one line:
//
//   pipetrain-cursor v1 pool=3 batch=17 steps=617 check=9c0e57d2a1b4f803
//
// `check` fingerprints the shards and the loader options (seed, temperature,
// budget, ...); a cursor is refused by a loader whose fingerprint differs,
// because the same position would then name other batches.
#ifndef PIPETRAIN_CORE_DATA_LOADER_CURSOR_H_
#define PIPETRAIN_CORE_DATA_LOADER_CURSOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace pipetrain {

struct LoaderCursor {
  int64_t pool = 0;    // the batch pool being consumed (pools are numbered from 0)
  int64_t batch = 0;   // batches of that pool already returned
  int64_t steps = 0;   // batches returned since the start of training
  uint64_t check = 0;  // fingerprint of shards and options

  std::string ToString() const;
  // Errors quote the text and name the field that is wrong.
  static absl::StatusOr<LoaderCursor> Parse(const std::string& text);

  bool operator==(const LoaderCursor&) const = default;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_LOADER_CURSOR_H_
