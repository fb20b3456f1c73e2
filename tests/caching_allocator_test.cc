// The caching allocator's policy, on the CPU with a counting fake backend:
// reuse, rounding, best fit within an eighth, retry after emptying the cache
// when the backend is out of memory, and the counters.
#include "core/caching_allocator.h"

#include <cstdlib>
#include <map>
#include <set>

#include "gtest/gtest.h"

namespace pipetrain {
namespace {

// malloc with a byte budget; records what it holds.
struct FakeDevice {
  size_t budget = size_t{64} << 20;
  size_t held = 0;
  std::set<void*> live;
  int allocations = 0;

  CachingAllocator::Backend Backend() {
    CachingAllocator::Backend b;
    b.allocate = [this](size_t bytes) -> void* {
      if (held + bytes > budget) return nullptr;
      void* p = std::malloc(bytes);
      held += bytes;
      live.insert(p);
      ++allocations;
      sizes[p] = bytes;
      return p;
    };
    b.release = [this](void* p) {
      held -= sizes[p];
      live.erase(p);
      std::free(p);
    };
    b.device_name = "fake:0";
    return b;
  }
  std::map<void*, size_t> sizes;
};

TEST(CachingAllocatorTest, RoundsSmallAndLargeRequests) {
  EXPECT_EQ(CachingAllocator::RoundedSize(0), 512u);
  EXPECT_EQ(CachingAllocator::RoundedSize(1), 512u);
  EXPECT_EQ(CachingAllocator::RoundedSize(513), 1024u);
  EXPECT_EQ(CachingAllocator::RoundedSize((1 << 20) - 1), size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::RoundedSize((1 << 20) + 1), size_t{2} << 20);
  EXPECT_EQ(CachingAllocator::RoundedSize((3 << 20)), size_t{4} << 20);
}

TEST(CachingAllocatorTest, ReusesAFreedBlockWithoutTheBackend) {
  FakeDevice dev;
  CachingAllocator alloc(dev.Backend());
  void* a = *alloc.Allocate(1000);
  alloc.Free(a);
  void* b = *alloc.Allocate(900);  // same rounded size
  EXPECT_EQ(a, b);
  EXPECT_EQ(dev.allocations, 1);
  const AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.cache_hits, 1);
  EXPECT_EQ(s.backend_allocations, 1);
  EXPECT_EQ(s.allocated_bytes, 1024u);
  alloc.Free(b);
}

TEST(CachingAllocatorTest, DoesNotServeSmallRequestsFromMuchLargerBlocks) {
  FakeDevice dev;
  CachingAllocator alloc(dev.Backend());
  void* big = *alloc.Allocate(8192);
  alloc.Free(big);
  void* small = *alloc.Allocate(512);  // 8192 would waste 15/16 of itself
  EXPECT_NE(small, big);
  EXPECT_EQ(dev.allocations, 2);
  void* close = *alloc.Allocate(7500);  // rounds to 7680; 8192 wastes 1/16: served
  EXPECT_EQ(close, big);
  alloc.Free(small);
  alloc.Free(close);
}

TEST(CachingAllocatorTest, EmptiesTheCacheAndRetriesWhenOutOfMemory) {
  FakeDevice dev;
  dev.budget = size_t{8} << 20;
  CachingAllocator alloc(dev.Backend());
  void* a = *alloc.Allocate(size_t{4} << 20);
  alloc.Free(a);  // cached: 4 MiB of the 8 MiB budget
  absl::StatusOr<void*> b = alloc.Allocate(size_t{6} << 20);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(dev.held, size_t{6} << 20);  // the cached block went back first
  alloc.Free(*b);
}

TEST(CachingAllocatorTest, OutOfMemoryNamesDeviceRequestAndWhatIsHeld) {
  FakeDevice dev;
  dev.budget = size_t{4} << 20;
  CachingAllocator alloc(dev.Backend());
  void* a = *alloc.Allocate(size_t{3} << 20);
  absl::StatusOr<void*> b = alloc.Allocate(size_t{2} << 20);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("fake:0"), std::string::npos) << b.status();
  EXPECT_NE(b.status().message().find("2097152 bytes"), std::string::npos) << b.status();
  EXPECT_NE(b.status().message().find("4.0 MiB held"), std::string::npos) << b.status();
  alloc.Free(a);
}

TEST(CachingAllocatorTest, CountsPeaksAndReturnsEverythingOnEmptyCache) {
  FakeDevice dev;
  CachingAllocator alloc(dev.Backend());
  void* a = *alloc.Allocate(1 << 10);
  void* b = *alloc.Allocate(1 << 12);
  alloc.Free(a);
  AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.peak_allocated_bytes, (1u << 10) + (1u << 12));
  EXPECT_EQ(s.allocated_bytes, 1u << 12);
  EXPECT_EQ(s.reserved_bytes, (1u << 10) + (1u << 12));
  alloc.ResetPeak();
  EXPECT_EQ(alloc.stats().peak_allocated_bytes, 1u << 12);
  alloc.EmptyCache();
  EXPECT_EQ(dev.live.size(), 1u);
  EXPECT_EQ(alloc.stats().reserved_bytes, 1u << 12);
  alloc.Free(b);
}

TEST(CachingAllocatorDeathTest, FreeingAForeignPointerAborts) {
  FakeDevice dev;
  CachingAllocator alloc(dev.Backend());
  int local = 0;
  EXPECT_DEATH(alloc.Free(&local), "does not hold");
}

}  // namespace
}  // namespace pipetrain
