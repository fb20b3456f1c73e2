// core/util/host_memory.h: the /proc field parser, this process's own
// numbers moving the way memory does (a touched 64 MiB block shows up), and
// the machine's available memory read.
#include "core/util/host_memory.h"

#include <cstring>
#include <memory>

#include "gtest/gtest.h"

namespace pipetrain {
namespace {

TEST(HostMemoryTest, ParsesKilobyteFields) {
  const std::string status = "Name:\tpipetrain\nVmHWM:\t  123456 kB\nVmRSS:\t    2048 kB\n";
  EXPECT_EQ(*ProcFieldBytes(status, "VmHWM"), 123456 * 1024LL);
  EXPECT_EQ(*ProcFieldBytes(status, "VmRSS"), 2048 * 1024LL);
}

TEST(HostMemoryTest, MissingOrMalformedFieldsAreErrorsNamingTheField) {
  const auto missing = ProcFieldBytes("VmRSS:\t1 kB\n", "VmHWM");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("VmHWM"), std::string::npos);
  EXPECT_FALSE(ProcFieldBytes("VmHWM:\tlots kB\n", "VmHWM").ok());
  EXPECT_FALSE(ProcFieldBytes("VmHWM:\t12 MB\n", "VmHWM").ok());
  EXPECT_FALSE(ProcFieldBytes("VmHWM:\t-5 kB\n", "VmHWM").ok());
  // A field whose name only starts the same is not the field.
  EXPECT_FALSE(ProcFieldBytes("VmHWMX:\t5 kB\n", "VmHWM").ok());
}

TEST(HostMemoryTest, OwnPeakFollowsTouchedMemory) {
  const auto before = PeakResidentBytes();
  ASSERT_TRUE(before.ok()) << before.status();
  const size_t bytes = 64u << 20;
  std::unique_ptr<char[]> block(new char[bytes]);
  std::memset(block.get(), 1, bytes);  // resident only once written
  const auto now = ResidentBytes();
  const auto after = PeakResidentBytes();
  ASSERT_TRUE(now.ok() && after.ok());
  EXPECT_GE(*after, *before + static_cast<int64_t>(bytes) / 2);
  EXPECT_GE(*after, *now);
  EXPECT_GT(block[bytes - 1], 0);
}

TEST(HostMemoryTest, ResetStartsThePeakFromWhatIsResidentNow) {
  {
    const size_t bytes = 96u << 20;
    std::unique_ptr<char[]> block(new char[bytes]);
    std::memset(block.get(), 1, bytes);
    EXPECT_GT(block[bytes / 2], 0);
  }  // freed: a block this large goes back to the kernel at once
  const auto high = PeakResidentBytes();
  ASSERT_TRUE(ResetPeakResident().ok());
  const auto reset = PeakResidentBytes();
  ASSERT_TRUE(high.ok() && reset.ok());
  EXPECT_LT(*reset, *high - (48LL << 20));
}

TEST(HostMemoryTest, MachineHasSomeMemoryAvailable) {
  const auto available = AvailableBytes();
  ASSERT_TRUE(available.ok()) << available.status();
  EXPECT_GT(*available, 0);
}

}  // namespace
}  // namespace pipetrain
