// CachingAllocator: keeps freed device blocks for reuse, so a training step
// does not call cudaMalloc/cudaFree (each a device-wide synchronisation) for
// every activation. The policy lives here, in plain C++, and is tested on the
// CPU with a fake backend; core/cuda/device_memory.cu gives it cudaMalloc and
// cudaFree.
//
// All work is ordered on one compute stream, so a block freed by the host may
// be handed out again at once: any kernel that still reads the old tensor was
// queued before any kernel that writes the new one. Memory used on another
// stream (NCCL's) is kept alive by its request until that stream is waited on.
#ifndef PIPETRAIN_CORE_CACHING_ALLOCATOR_H_
#define PIPETRAIN_CORE_CACHING_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"

namespace pipetrain {

struct AllocatorStats {
  size_t allocated_bytes = 0;       // held by live tensors (rounded sizes)
  size_t reserved_bytes = 0;        // allocated + cached, i.e. taken from the backend
  size_t peak_allocated_bytes = 0;  // since construction or ResetPeak()
  size_t peak_reserved_bytes = 0;
  int64_t backend_allocations = 0;  // calls that reached the backend
  int64_t cache_hits = 0;           // requests served from the cache
};

class CachingAllocator {
 public:
  // The backend hands out and takes back raw blocks. `allocate` returns null
  // when it is out of memory; `describe` names the device for error messages.
  struct Backend {
    std::function<void*(size_t)> allocate;
    std::function<void(void*)> release;
    std::string device_name;
  };

  // Requests are rounded up to kSmallRounding below kLargeThreshold and to
  // kLargeRounding above, so that blocks of nearly equal size are interchangeable.
  static constexpr size_t kSmallRounding = 512;
  static constexpr size_t kLargeThreshold = size_t{1} << 20;
  static constexpr size_t kLargeRounding = size_t{2} << 20;

  explicit CachingAllocator(Backend backend);
  ~CachingAllocator();  // returns every cached block; live blocks are the owners' to free
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  static size_t RoundedSize(size_t bytes);

  // A block of at least `bytes` (0 is allowed and gets the smallest block).
  // Serves the best-fitting cached block that wastes at most an eighth of
  // itself; otherwise asks the backend, and when the backend is out of memory,
  // returns every cached block to it and asks once more. ResourceExhausted
  // names the request, the device and what is held.
  absl::StatusOr<void*> Allocate(size_t bytes);
  // Puts a block from Allocate back in the cache. Aborts on a pointer this
  // allocator did not hand out (a double free is a programming error).
  void Free(void* ptr);
  // Returns every cached block to the backend.
  void EmptyCache();

  AllocatorStats stats() const;
  void ResetPeak();

 private:
  void ReleaseCachedLocked();

  Backend backend_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> cached_;     // size -> block, free for reuse
  std::unordered_map<void*, size_t> live_;  // block -> size, handed out
  AllocatorStats stats_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_CACHING_ALLOCATOR_H_
