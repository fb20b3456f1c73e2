// The device communicator (NCCL, or host-staged MPI when ranks share a GPU),
// run under mpirun (2 and 4 ranks).
//
// Every rank runs every test in the same order (the tests call collectives),
// and a test skips only on a condition all ranks agreed on over MPI, so no
// rank waits for one that skipped. Without a GPU the device tests skip; the
// host-staged communicator's host path and the factory's failure without a
// GPU are still tested. Rank 0 prints GoogleTest's report; the others print
// their failures only; the ranks agree on the outcome at the end.
#include "parallel/nccl_communicator.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/gpu_runtime.h"
#include "gtest/gtest.h"
#include "parallel/host_staged_communicator.h"
#include "parallel/mpi_communicator.h"

namespace pipetrain {
namespace {

Communicator* g_world = nullptr;
Communicator& World() { return *g_world; }

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Bytes that depend on the seed and their position (whole elements of any
// dtype: bf16 and f32 patterns may hold NaNs, which byte comparison handles).
Tensor PatternTensor(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor t = Tensor::Empty(shape, dtype);
  auto* bytes = static_cast<unsigned char*>(t.raw_data());
  for (size_t i = 0; i < t.nbytes(); ++i) {
    bytes[i] = static_cast<unsigned char>(SplitMix64(seed * 1000003 + i));
  }
  return t;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  Tensor ha = a.device() == Device::kCpu ? a : a.CopyTo(Device::kCpu);
  Tensor hb = b.device() == Device::kCpu ? b : b.CopyTo(Device::kCpu);
  return ha.dtype() == hb.dtype() && ha.nbytes() == hb.nbytes() &&
         std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

// Rank r's partial sum: finite values of mixed sign in [-4, 4).
Tensor Partial(int64_t n, DType dtype, int rank) {
  std::vector<double> values(static_cast<size_t>(n));
  std::vector<int32_t> ints(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bits = SplitMix64(static_cast<uint64_t>(rank) * 7919 + static_cast<uint64_t>(i));
    values[static_cast<size_t>(i)] = static_cast<double>(bits >> 11) / 9007199254740992.0 * 8 - 4;
    ints[static_cast<size_t>(i)] = static_cast<int32_t>(bits >> 40) - (1 << 23);
  }
  if (dtype == DType::kI32) return Tensor::FromInts(ints, {n});
  if (dtype == DType::kBF16) return Tensor::FromVector(values, {n}, DType::kF32).To(DType::kBF16);
  return Tensor::FromVector(values, {n}, dtype);
}

// Whether every rank can use a GPU (agreed over MPI, so all skip together).
bool AllRanksHaveGpu() {
  Tensor missing = Tensor::FromInts({CudaDeviceCount() > 0 ? 0 : 1}, {1});
  const absl::Status agreed = World().AllReduceSum(missing);
  return agreed.ok() && missing.At(0) == 0;
}

// The device communicator, created once (collectively) by the first GPU test
// and destroyed before the MPI world (not at exit, after CUDA's teardown).
std::unique_ptr<Communicator> g_device;

Communicator* DeviceComm() {
  if (g_device == nullptr) {
    absl::StatusOr<std::unique_ptr<Communicator>> made = CreateDeviceCommunicator(World());
    if (!made.ok()) {
      World().Abort(absl::StrCat("CreateDeviceCommunicator: ", made.status().ToString()));
    }
    g_device = std::move(*made);
  }
  return g_device.get();
}

bool IsHostStaged(Communicator* comm) {
  return dynamic_cast<HostStagedCommunicator*>(comm) != nullptr;
}

// ---- Host-staged communicator on host tensors (runs everywhere) ----------

TEST(HostStagedCommunicatorTest, HostAllReduceIsBitwiseMpis) {
  HostStagedCommunicator staged(World());
  for (DType dtype : {DType::kF32, DType::kF64, DType::kI32, DType::kBF16}) {
    Tensor mine = Partial(1000, dtype, World().rank());
    Tensor expected = mine.Clone();
    EXPECT_TRUE(World().AllReduceSum(expected).ok());
    EXPECT_TRUE(staged.AllReduceSum(mine).ok());
    EXPECT_TRUE(SameBytes(mine, expected)) << DTypeName(dtype);
  }
}

TEST(HostStagedCommunicatorTest, HostRingExchangeBroadcastGatherAndSplit) {
  HostStagedCommunicator staged(World());
  const int rank = staged.rank(), size = staged.size();
  const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  Tensor to_next = PatternTensor({300}, DType::kF32, rank * 2);
  Tensor to_prev = PatternTensor({300}, DType::kF32, rank * 2 + 1);
  Tensor from_prev = Tensor::Empty({300}, DType::kF32);
  Tensor from_next = Tensor::Empty({300}, DType::kF32);
  auto s1 = staged.Isend(to_next, next, 1);
  auto s2 = staged.Isend(to_prev, prev, 2);
  auto r1 = staged.Irecv(from_prev, prev, 1);
  auto r2 = staged.Irecv(from_next, next, 2);
  for (auto* request : {&s1, &s2, &r1, &r2}) {
    EXPECT_TRUE(request->ok() && (**request)->Wait().ok());
  }
  EXPECT_TRUE(SameBytes(from_prev, PatternTensor({300}, DType::kF32, prev * 2)));
  EXPECT_TRUE(SameBytes(from_next, PatternTensor({300}, DType::kF32, next * 2 + 1)));

  Tensor b = PatternTensor({17}, DType::kBF16, rank == size - 1 ? 99 : rank);
  EXPECT_TRUE(staged.Broadcast(b, size - 1).ok());
  EXPECT_TRUE(SameBytes(b, PatternTensor({17}, DType::kBF16, 99)));

  absl::StatusOr<std::vector<Tensor>> all = staged.AllGather(Tensor::FromInts({rank}, {1}));
  EXPECT_TRUE(all.ok());
  if (all.ok()) {
    for (int r = 0; r < size; ++r) EXPECT_EQ((*all)[static_cast<size_t>(r)].At(0), r);
  }

  absl::StatusOr<std::unique_ptr<Communicator>> half = staged.Split(rank % 2, rank);
  EXPECT_TRUE(half.ok());
  if (half.ok()) {
    EXPECT_EQ((*half)->size(), (size + 1 - rank % 2) / 2);
    EXPECT_TRUE((*half)->Barrier().ok());
  }
}

// ---- The factory and the device paths ------------------------------------

TEST(DeviceCommunicatorTest, WithoutAGpuEveryRankGetsAnError) {
  if (AllRanksHaveGpu()) GTEST_SKIP() << "every rank has a GPU";
  // Collective, and must fail on every rank instead of leaving one waiting.
  absl::StatusOr<std::unique_ptr<Communicator>> comm = CreateDeviceCommunicator(World());
  EXPECT_FALSE(comm.ok());
  EXPECT_TRUE(World().Barrier().ok());
}

TEST(DeviceCommunicatorTest, AllReduceMatchesMpi) {
  if (!AllRanksHaveGpu()) GTEST_SKIP() << "no GPU on some rank";
  Communicator* comm = DeviceComm();
  if (World().rank() == 0) {
    std::printf("[mpi] device communicator: %s\n", IsHostStaged(comm) ? "host-staged" : "NCCL");
  }
  for (DType dtype : {DType::kF32, DType::kI32, DType::kBF16}) {
    Tensor host = Partial(100003, dtype, World().rank());
    Tensor device = host.CopyTo(Device::kCuda);
    EXPECT_TRUE(World().AllReduceSum(host).ok());
    EXPECT_TRUE(comm->AllReduceSum(device).ok());
    if (IsHostStaged(comm) || dtype == DType::kI32) {
      // MPI's arithmetic, or integer sums: the same bits.
      EXPECT_TRUE(SameBytes(device, host)) << DTypeName(dtype);
      continue;
    }
    // NCCL adds in its own order: close, not bitwise (see nccl_communicator.h).
    const std::vector<double> got = device.ToVector(), want = host.ToVector();
    const double tol = dtype == DType::kBF16 ? 0.05 * World().size() : 1e-5 * World().size();
    int bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (!(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])))) ++bad;
    }
    EXPECT_EQ(bad, 0) << DTypeName(dtype);
  }
}

TEST(DeviceCommunicatorTest, StartedAllReduceOverlapsWithOtherWork) {
#if !PIPETRAIN_WITH_CUDA
  GTEST_SKIP() << "built without CUDA: no NCCL communicator";
#else
  if (!AllRanksHaveGpu()) GTEST_SKIP() << "no GPU on some rank";
  auto* nccl = dynamic_cast<NcclCommunicator*>(DeviceComm());
  if (nccl == nullptr) GTEST_SKIP() << "ranks share a GPU: host-staged fallback";
  Tensor sum = Tensor::FromInts(std::vector<int32_t>(4096, World().rank() + 1), {4096})
                   .CopyTo(Device::kCuda);
  absl::StatusOr<std::unique_ptr<CommRequest>> started = nccl->StartAllReduceSum(sum);
  EXPECT_TRUE(started.ok());
  // Work on the compute stream meanwhile (it must not disturb the sum).
  Tensor other = Tensor::Zeros({1 << 20}, DType::kF32, Device::kCuda);
  other.Fill(3.0);
  if (started.ok()) {
    EXPECT_TRUE((*started)->Wait().ok());
  }
  const int size = World().size();
  EXPECT_EQ(sum.At(4095), size * (size + 1) / 2);
  EXPECT_EQ(other.At(0), 3.0);
#endif
}

TEST(DeviceCommunicatorTest, RingExchangeBroadcastAndGatherAreExact) {
  if (!AllRanksHaveGpu()) GTEST_SKIP() << "no GPU on some rank";
  Communicator* comm = DeviceComm();
  const int rank = comm->rank(), size = comm->size();
  const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    // Large (≥ 1 MiB) and posted before any Wait, in the same order on
    // every rank (NCCL matches messages between two ranks in post order).
    const Shape shape = {512, 1024};
    Tensor to_next = PatternTensor(shape, dtype, rank * 2).CopyTo(Device::kCuda);
    Tensor to_prev = PatternTensor(shape, dtype, rank * 2 + 1).CopyTo(Device::kCuda);
    Tensor from_prev = Tensor::Zeros(shape, dtype, Device::kCuda);
    Tensor from_next = Tensor::Zeros(shape, dtype, Device::kCuda);
    auto s1 = comm->Isend(to_next, next, 1);
    auto s2 = comm->Isend(to_prev, prev, 2);
    auto r1 = comm->Irecv(from_prev, prev, 1);
    auto r2 = comm->Irecv(from_next, next, 2);
    for (auto* request : {&s1, &s2, &r1, &r2}) {
      EXPECT_TRUE(request->ok() && (**request)->Wait().ok());
    }
    EXPECT_TRUE(SameBytes(from_prev, PatternTensor(shape, dtype, prev * 2))) << DTypeName(dtype);
    EXPECT_TRUE(SameBytes(from_next, PatternTensor(shape, dtype, next * 2 + 1)))
        << DTypeName(dtype);
  }

  Tensor b = PatternTensor({1000}, DType::kF32, rank == size - 1 ? 99 : rank)
                 .CopyTo(Device::kCuda);
  EXPECT_TRUE(comm->Broadcast(b, size - 1).ok());
  EXPECT_TRUE(SameBytes(b, PatternTensor({1000}, DType::kF32, 99)));

  Tensor mine = PatternTensor({3, 5}, DType::kBF16, 1000 + rank).CopyTo(Device::kCuda);
  absl::StatusOr<std::vector<Tensor>> all = comm->AllGather(mine);
  EXPECT_TRUE(all.ok()) << all.status();
  if (all.ok()) {
    ASSERT_EQ(all->size(), static_cast<size_t>(size));
    for (int r = 0; r < size; ++r) {
      EXPECT_EQ((*all)[static_cast<size_t>(r)].shape(), mine.shape());
      EXPECT_TRUE(SameBytes((*all)[static_cast<size_t>(r)],
                            PatternTensor({3, 5}, DType::kBF16, 1000 + r)));
    }
  }
  EXPECT_TRUE(comm->Barrier().ok());
}

TEST(DeviceCommunicatorTest, MismatchedCollectiveFailsOnEveryRank) {
  if (!AllRanksHaveGpu()) GTEST_SKIP() << "no GPU on some rank";
  Communicator* comm = DeviceComm();
  Tensor t = Tensor::Zeros({comm->rank() == 0 ? 8 : 9}, DType::kF32, Device::kCuda);
  EXPECT_FALSE(comm->AllReduceSum(t).ok());
  EXPECT_TRUE(comm->Barrier().ok());
}

TEST(DeviceCommunicatorTest, SplitGroupsSumTheirOwnRanks) {
  if (!AllRanksHaveGpu()) GTEST_SKIP() << "no GPU on some rank";
  Communicator* comm = DeviceComm();
  const int rank = comm->rank();
  absl::StatusOr<std::unique_ptr<Communicator>> half = comm->Split(rank % 2, rank);
  ASSERT_TRUE(half.ok()) << half.status();  // every rank split, so every rank gets here
  Tensor t = Tensor::FromInts({rank}, {1}).CopyTo(Device::kCuda);
  EXPECT_TRUE((*half)->AllReduceSum(t).ok());
  int want = 0;
  for (int r = rank % 2; r < comm->size(); r += 2) want += r;
  EXPECT_EQ(t.At(0), want);
  EXPECT_TRUE(comm->Barrier().ok());
}

// Rank 0 prints GoogleTest's report; other ranks print their failures only.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[r%d] %s:%d: Failure\n%s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
  }

 private:
  int rank_;
};

int RunAllRanks(int argc, char** argv) {
  GTEST_FLAG_SET(color, "no");
  ::testing::InitGoogleTest(&argc, argv);
  absl::StatusOr<std::unique_ptr<Communicator>> world = MpiCommunicator::World();
  if (!world.ok()) {
    std::fprintf(stderr, "MpiCommunicator::World: %s\n", world.status().ToString().c_str());
    return 1;
  }
  g_world = world->get();
  const int rank = g_world->rank();
  if (rank != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }
  const int result = RUN_ALL_TESTS();
  std::fflush(stdout);
  Tensor failed = Tensor::FromInts({result != 0 ? 1 : 0}, {1});
  const absl::Status agreed = g_world->AllReduceSum(failed);
  const int failed_ranks = agreed.ok() ? static_cast<int>(failed.At(0)) : -1;
  if (rank == 0) {
    std::printf("[mpi] %d of %d ranks had failures\n", failed_ranks, g_world->size());
    std::fflush(stdout);
  }
  g_device.reset();
  g_world = nullptr;
  world->reset();
  return failed_ranks == 0 ? 0 : 1;
}

}  // namespace
}  // namespace pipetrain

int main(int argc, char** argv) { return pipetrain::RunAllRanks(argc, argv); }
