#include "core/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_format.h"

namespace pipetrain {

CachingAllocator::CachingAllocator(Backend backend) : backend_(std::move(backend)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  ReleaseCachedLocked();
}

size_t CachingAllocator::RoundedSize(size_t bytes) {
  const size_t unit = bytes < kLargeThreshold ? kSmallRounding : kLargeRounding;
  const size_t rounded = (std::max<size_t>(bytes, 1) + unit - 1) / unit * unit;
  return rounded;
}

absl::StatusOr<void*> CachingAllocator::Allocate(size_t bytes) {
  const size_t size = RoundedSize(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  // Best fit: the smallest cached block that is large enough, if it wastes
  // no more than an eighth of itself (a 2 MiB block must not serve 512 bytes).
  auto it = cached_.lower_bound(size);
  if (it != cached_.end() && it->first - size <= it->first / 8) {
    const size_t block_size = it->first;
    void* ptr = it->second;
    cached_.erase(it);
    live_.emplace(ptr, block_size);
    stats_.allocated_bytes += block_size;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    ++stats_.cache_hits;
    return ptr;
  }
  void* ptr = backend_.allocate(size);
  if (ptr == nullptr && !cached_.empty()) {
    ReleaseCachedLocked();
    ptr = backend_.allocate(size);
  }
  if (ptr == nullptr) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "out of memory on %s allocating %d bytes (%.1f MiB): %.1f MiB held by tensors, "
        "peak %.1f MiB; reduce tokens_per_batch or micro-batch size, or enable activation "
        "checkpointing",
        backend_.device_name, bytes, bytes / 1048576.0, stats_.allocated_bytes / 1048576.0,
        stats_.peak_allocated_bytes / 1048576.0));
  }
  ++stats_.backend_allocations;
  live_.emplace(ptr, size);
  stats_.allocated_bytes += size;
  stats_.reserved_bytes += size;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  return ptr;
}

void CachingAllocator::Free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    std::fprintf(stderr, "pipetrain: %s allocator asked to free %p, which it does not hold\n",
                 backend_.device_name.c_str(), ptr);
    std::abort();
  }
  stats_.allocated_bytes -= it->second;
  cached_.emplace(it->second, ptr);
  live_.erase(it);
}

void CachingAllocator::EmptyCache() {
  std::lock_guard<std::mutex> lock(mu_);
  ReleaseCachedLocked();
}

void CachingAllocator::ReleaseCachedLocked() {
  for (const auto& [size, ptr] : cached_) {
    backend_.release(ptr);
    stats_.reserved_bytes -= size;
  }
  cached_.clear();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::ResetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

}  // namespace pipetrain
