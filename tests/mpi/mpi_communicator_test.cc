// MpiCommunicator and the grid's groups, run under mpirun (2 and 4 ranks).
//
// Every rank runs every test, in the same order (the tests call collectives).
// Rank 0 prints GoogleTest's usual report; the other ranks print only their
// failures, prefixed with "[rN]". At the end the ranks agree on the outcome,
// and a failure on any rank makes every rank exit non-zero.
//
// Tests keep collective calls unconditional (EXPECT, not ASSERT, before a
// collective), so a failed check on one rank cannot leave the others waiting.
#include "parallel/mpi_communicator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "parallel/topology.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;

Communicator* g_world = nullptr;

Communicator& World() { return *g_world; }

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A tensor whose every byte depends on `seed` and its position: a transfer
// that drops, shifts or mixes up bytes cannot reproduce it.
Tensor PatternTensor(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor t = Tensor::Empty(shape, dtype);
  auto* bytes = static_cast<unsigned char*>(t.raw_data());
  for (size_t i = 0; i < t.nbytes(); ++i) {
    bytes[i] =
        static_cast<unsigned char>(SplitMix64(seed * 0x100000001b3ULL + i / 8) >> (i % 8 * 8));
  }
  return t;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Rank r's partial sum for the all-reduce tests: values over ~16 decades, so
// the order of additions shows in the low bits.
Tensor Partial(int64_t n, DType dtype, int rank) {
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t bits = SplitMix64(static_cast<uint64_t>(rank) * 1000003 + static_cast<uint64_t>(i));
    double mantissa = static_cast<double>(bits >> 11) / 9007199254740992.0 - 0.5;  // [-0.5, 0.5)
    int exponent = static_cast<int>(bits % 17) - 8;
    values[static_cast<size_t>(i)] = mantissa * std::pow(10.0, exponent);
  }
  if (dtype == DType::kF32 || dtype == DType::kF64) return Tensor::FromVector(values, {n}, dtype);
  if (dtype == DType::kBF16) return Tensor::FromVector(values, {n}, DType::kF32).To(DType::kBF16);
  std::vector<int32_t> ints(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    // Large enough that sums overflow and wrap.
    ints[static_cast<size_t>(i)] =
        static_cast<int32_t>(
            SplitMix64(static_cast<uint64_t>(rank) * 7919 + static_cast<uint64_t>(i)) >> 33) *
        (i % 2 == 0 ? 1 : -1);
  }
  return Tensor::FromInts(ints, {n});
}

// The reference: partials added one rank after another, in `order`.
Tensor SumInOrder(int64_t n, DType dtype, const std::vector<int>& order) {
  Tensor sum = Partial(n, dtype, order[0]).Clone();
  if (dtype == DType::kBF16) {
    // bf16 partials are accumulated in f32 and rounded once.
    Tensor acc = sum.To(DType::kF32);
    for (size_t k = 1; k < order.size(); ++k) {
      Tensor p = Partial(n, dtype, order[k]).To(DType::kF32);
      for (int64_t i = 0; i < n; ++i) acc.data<float>()[i] += p.data<float>()[i];
    }
    return acc.To(DType::kBF16);
  }
  for (size_t k = 1; k < order.size(); ++k) {
    Tensor p = Partial(n, dtype, order[k]);
    for (int64_t i = 0; i < n; ++i) {
      switch (dtype) {
        case DType::kF32:
          sum.data<float>()[i] += p.data<float>()[i];
          break;
        case DType::kF64:
          sum.data<double>()[i] += p.data<double>()[i];
          break;
        case DType::kI32:
          sum.data<int32_t>()[i] =
              static_cast<int32_t>(static_cast<uint32_t>(sum.data<int32_t>()[i]) +
                                   static_cast<uint32_t>(p.data<int32_t>()[i]));
          break;
        case DType::kBF16:
          break;
      }
    }
  }
  return sum;
}

std::vector<int> RankOrder(int n) {
  std::vector<int> order;
  for (int r = 0; r < n; ++r) order.push_back(r);
  return order;
}

const DType kAllDTypes[] = {DType::kF32, DType::kF64, DType::kI32, DType::kBF16};

TEST(MpiCommunicatorTest, WorldMatchesTheLauncherEnvironment) {
  absl::StatusOr<ProcessEnvironment> env = DetectEnvironment();
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->launcher, Launcher::kOpenMpi);
  EXPECT_TRUE(CheckEnvironmentMatchesWorld(*env, World().rank(), World().size()).ok());
  EXPECT_GE(World().size(), 2);
}

// Every rank sends to both neighbours and receives from both, every dtype at
// once, with all requests posted before the first Wait and the sends waited
// for first. Messages are large enough (≥ 1 MiB) for MPI's rendezvous
// protocol, where a send completes only once the receive is posted: the
// pattern deadlocks unless requests are truly non-blocking. With two ranks
// both neighbours are the same rank, and only the tags keep the streams apart
// (they have different sizes, so a mix-up is also a size error).
TEST(MpiCommunicatorTest, RingExchangeOfEveryDTypeBothWaysAtOnce) {
  Communicator& world = World();
  const int n = world.size(), me = world.rank();
  const int next = (me + 1) % n, prev = (me + n - 1) % n;
  auto seed = [](int sender, int dtype, int direction) {
    return static_cast<uint64_t>(sender * 100 + dtype * 10 + direction);
  };
  auto shape = [](int dtype, int direction) { return Shape{512 + 3 * dtype + direction, 1024}; };
  std::vector<Tensor> sent, received, expected;
  std::vector<std::unique_ptr<CommRequest>> sends, receives;
  for (int d = 0; d < 4; ++d) {
    const DType dtype = kAllDTypes[d];
    for (int direction = 0; direction < 2; ++direction) {  // 0: to next, 1: to prev
      const int to = direction == 0 ? next : prev, from = direction == 0 ? prev : next;
      const int tag = 10 * d + direction;
      sent.push_back(PatternTensor(shape(d, direction), dtype, seed(me, d, direction)));
      expected.push_back(PatternTensor(shape(d, direction), dtype, seed(from, d, direction)));
      received.push_back(Tensor::Zeros(shape(d, direction), dtype));
      auto send = world.Isend(sent.back(), to, tag);
      auto receive = world.Irecv(received.back(), from, tag);
      ASSERT_TRUE(send.ok()) << send.status();
      ASSERT_TRUE(receive.ok()) << receive.status();
      sends.push_back(*std::move(send));
      receives.push_back(*std::move(receive));
    }
  }
  for (auto& send : sends) EXPECT_TRUE(send->Wait().ok());
  for (size_t i = 0; i < receives.size(); ++i) {
    absl::Status status = receives[i]->Wait();
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_TRUE(SameBytes(received[i], expected[i])) << "message " << i;
  }
}

TEST(MpiCommunicatorTest, ReceiveOfAnotherSizeIsAnErrorNamingPeerTagAndSizes) {
  Communicator& world = World();
  if (world.rank() == 0) {
    Tensor small = Tensor::Zeros({10}, DType::kF32);
    auto send = world.Isend(small, 1, 5);
    ASSERT_TRUE(send.ok());
    EXPECT_TRUE((*send)->Wait().ok());
    // Rank 1 sends more than this buffer holds.
    Tensor buffer = Tensor::Zeros({3, 4}, DType::kF32);
    auto receive = world.Irecv(buffer, 1, 6);
    ASSERT_TRUE(receive.ok());
    absl::Status status = (*receive)->Wait();
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(std::string(status.message()), HasSubstr("Irecv from rank 1 (world rank 1, tag 6)"));
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("expected 12 f32 elements (48 bytes) of [3,4], got "));
    // Open MPI reports the size of a truncated message; MPI need not.
    EXPECT_THAT(std::string(status.message()),
                ::testing::AnyOf(HasSubstr("got 16 elements (64 bytes)"),
                                 HasSubstr("got a larger message")));
  } else if (world.rank() == 1) {
    Tensor buffer = Tensor::Zeros({12}, DType::kF32);
    auto receive = world.Irecv(buffer, 0, 5);
    ASSERT_TRUE(receive.ok());
    absl::Status status = (*receive)->Wait();
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(std::string(status.message()), HasSubstr("Irecv from rank 0 (world rank 0, tag 5) on rank 1"));
    EXPECT_THAT(
        std::string(status.message()),
        HasSubstr("expected 12 f32 elements (48 bytes) of [12], got 10 elements (40 bytes)"));
    Tensor big = Tensor::Zeros({16}, DType::kF32);
    auto send = world.Isend(big, 0, 6);
    ASSERT_TRUE(send.ok());
    EXPECT_TRUE((*send)->Wait().ok());
  }
  EXPECT_TRUE(world.Barrier().ok());
}

TEST(MpiCommunicatorTest, BadPointToPointArgumentsAreErrorsWithoutCommunicating) {
  Communicator& world = World();
  Tensor t = Tensor::Zeros({4}, DType::kF32);
  auto bad_peer = world.Isend(t, world.size(), 0);
  ASSERT_FALSE(bad_peer.ok());
  EXPECT_THAT(std::string(bad_peer.status().message()), HasSubstr("peer outside the group"));
  auto bad_tag = world.Irecv(t, 0, -1);
  ASSERT_FALSE(bad_tag.ok());
  EXPECT_THAT(std::string(bad_tag.status().message()), HasSubstr("tags must lie in [0, "));
  Tensor undefined;
  EXPECT_FALSE(world.Isend(undefined, 0, 0).ok());
}

TEST(MpiCommunicatorTest, DroppedRequestsCompleteBeforeTheirBuffersGo) {
  Communicator& world = World();
  const int n = world.size(), me = world.rank();
  Tensor received = Tensor::Zeros({1000}, DType::kF64);
  auto receive = world.Irecv(received, (me + n - 1) % n, 3);
  ASSERT_TRUE(receive.ok());
  {
    // The tensor and the request both go out of scope before the peer has
    // necessarily received: the request keeps the storage and waits.
    Tensor sent = PatternTensor({1000}, DType::kF64, 77 + me);
    auto send = world.Isend(sent, (me + 1) % n, 3);
    ASSERT_TRUE(send.ok());
  }
  EXPECT_TRUE((*receive)->Wait().ok());
  EXPECT_TRUE(SameBytes(received, PatternTensor({1000}, DType::kF64, 77 + (me + n - 1) % n)));
}

// The sum must equal, bit for bit, the partials added in rank order, and be
// the same bits on every rank. Sizes cover: not divisible by the group size,
// smaller than it (empty slices), and empty.
TEST(MpiCommunicatorTest, AllReduceSumIsTheRankOrderedSumBitwiseOnEveryRank) {
  Communicator& world = World();
  const int n = world.size();
  for (DType dtype : kAllDTypes) {
    for (int64_t count : {int64_t{10007}, int64_t{3}, int64_t{0}}) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), "[", count, "]"));
      Tensor t = Partial(count, dtype, world.rank());
      absl::Status status = world.AllReduceSum(t);
      EXPECT_TRUE(status.ok()) << status;
      Tensor reference = SumInOrder(count, dtype, RankOrder(n));
      EXPECT_TRUE(SameBytes(t, reference));
      absl::StatusOr<std::vector<Tensor>> everyone = world.AllGather(t);
      ASSERT_TRUE(everyone.ok()) << everyone.status();
      for (int r = 0; r < n; ++r) EXPECT_TRUE(SameBytes((*everyone)[r], t)) << "rank " << r;
    }
  }
}

// The check above would pass for any summation order if floating-point
// addition were associative for these inputs; with 3+ ranks it is not.
TEST(MpiCommunicatorTest, TheAllReduceInputsAreOrderSensitive) {
  const int n = World().size();
  if (n < 3) GTEST_SKIP() << "two partials add the same in either order";
  std::vector<int> reversed = RankOrder(n);
  std::reverse(reversed.begin(), reversed.end());
  for (DType dtype : {DType::kF32, DType::kF64}) {
    EXPECT_FALSE(
        SameBytes(SumInOrder(10007, dtype, RankOrder(n)), SumInOrder(10007, dtype, reversed)))
        << DTypeName(dtype);
  }
}

// More elements than one reduction chunk (2^24): the chunks' slices must
// line up. Integers, so the exact sum is known without the other partials.
TEST(MpiCommunicatorTest, AllReduceSumAcrossChunks) {
  Communicator& world = World();
  const int n = world.size();
  const int64_t count = (int64_t{1} << 24) + 4099;
  Tensor t = Tensor::Empty({count}, DType::kI32);
  int32_t* data = t.data<int32_t>();
  for (int64_t i = 0; i < count; ++i)
    data[i] = static_cast<int32_t>(i % 100003) * (world.rank() + 1);
  ASSERT_TRUE(world.AllReduceSum(t).ok());
  const int32_t factor = n * (n + 1) / 2;
  int64_t wrong = 0;
  for (int64_t i = 0; i < count; ++i) wrong += data[i] != static_cast<int32_t>(i % 100003) * factor;
  EXPECT_EQ(wrong, 0);
}

TEST(MpiCommunicatorTest, AllGatherIsInRankOrderAndKeepsTheShape) {
  Communicator& world = World();
  for (DType dtype : kAllDTypes) {
    Tensor mine = PatternTensor({2, 3}, dtype, 500 + world.rank());
    absl::StatusOr<std::vector<Tensor>> all = world.AllGather(mine);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_EQ(all->size(), static_cast<size_t>(world.size()));
    for (int r = 0; r < world.size(); ++r) {
      EXPECT_EQ((*all)[r].shape(), (Shape{2, 3}));
      EXPECT_TRUE(SameBytes((*all)[r], PatternTensor({2, 3}, dtype, 500 + r)))
          << DTypeName(dtype) << " rank " << r;
    }
  }
}

TEST(MpiCommunicatorTest, BroadcastFromEveryRoot) {
  Communicator& world = World();
  for (int root = 0; root < world.size(); ++root) {
    for (DType dtype : kAllDTypes) {
      Tensor pattern = PatternTensor({33, 7}, dtype, 900 + root);
      Tensor t = world.rank() == root ? pattern.Clone() : Tensor::Zeros({33, 7}, dtype);
      EXPECT_TRUE(world.Broadcast(t, root).ok());
      EXPECT_TRUE(SameBytes(t, pattern)) << DTypeName(dtype) << " root " << root;
    }
  }
}

// A rank that brings another tensor, or none, makes the collective fail on
// every rank (instead of hanging or truncating), and the group stays usable.
TEST(MpiCommunicatorTest, MismatchedCollectivesFailOnEveryRank) {
  Communicator& world = World();
  Tensor t = Tensor::Zeros({world.rank() == 0 ? 5 : 4}, DType::kF32);
  absl::Status status = world.AllReduceSum(t);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("rank 0: f32[5]; rank 1: f32[4]"));

  Tensor b = Tensor::Zeros({4}, world.rank() == 1 ? DType::kF64 : DType::kF32);
  status = world.Broadcast(b, 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("rank 1: f64[4] root 0"));

  Tensor undefined;
  Tensor& mine = world.rank() == 1 ? undefined : t;
  absl::StatusOr<std::vector<Tensor>> gathered = world.AllGather(mine);
  ASSERT_FALSE(gathered.ok());
  if (world.rank() == 1) {
    EXPECT_THAT(std::string(gathered.status().message()), HasSubstr("undefined tensor"));
  } else {
    EXPECT_THAT(std::string(gathered.status().message()),
                HasSubstr("rank(s) 1 of the group could not take part"));
  }

  Tensor ok = Tensor::Zeros({4}, DType::kF32);
  ok.Fill(1.0);
  EXPECT_TRUE(world.AllReduceSum(ok).ok());
  EXPECT_EQ(ok.At(3), world.size());
}

// Every S x D grid of the world: the pipeline group of a rank holds its
// replica's stages in stage order, the data-parallel group its stage's
// replicas in replica order, and a message to the next stage arrives.
TEST(MpiCommunicatorTest, SplitsIntoPipelineAndDataParallelGroups) {
  Communicator& world = World();
  const int n = world.size();
  for (int stages = 1; stages <= n; ++stages) {
    if (n % stages != 0) continue;
    SCOPED_TRACE(absl::StrCat(stages, " stages x ", n / stages, " replicas"));
    absl::StatusOr<Topology> topology = MakeTopology(n, world.rank(), stages, n / stages);
    ASSERT_TRUE(topology.ok()) << topology.status();
    absl::StatusOr<ProcessGroups> groups = SplitGroups(world, *topology);
    ASSERT_TRUE(groups.ok()) << groups.status();
    Communicator& pipeline = *groups->pipeline;
    Communicator& data_parallel = *groups->data_parallel;
    EXPECT_EQ(pipeline.rank(), topology->stage);
    EXPECT_EQ(pipeline.size(), stages);
    EXPECT_EQ(data_parallel.rank(), topology->replica);
    EXPECT_EQ(data_parallel.size(), n / stages);

    Tensor me = Tensor::FromInts({world.rank()}, {1});
    absl::StatusOr<std::vector<Tensor>> members = pipeline.AllGather(me);
    ASSERT_TRUE(members.ok()) << members.status();
    std::vector<int> ranks;
    for (const Tensor& m : *members) ranks.push_back(static_cast<int>(m.At(0)));
    EXPECT_EQ(ranks, topology->PipelineGroupRanks());
    members = data_parallel.AllGather(me);
    ASSERT_TRUE(members.ok()) << members.status();
    ranks.clear();
    for (const Tensor& m : *members) ranks.push_back(static_cast<int>(m.At(0)));
    EXPECT_EQ(ranks, topology->DataParallelGroupRanks());

    // Stage s sends its world rank to stage s + 1 over the pipeline group.
    Tensor from_prev = Tensor::FromInts({-1}, {1});
    std::unique_ptr<CommRequest> send, receive;
    if (!topology->IsFirstStage()) {
      auto r = pipeline.Irecv(from_prev, topology->stage - 1, 1);
      ASSERT_TRUE(r.ok()) << r.status();
      receive = *std::move(r);
    }
    if (!topology->IsLastStage()) {
      auto s = pipeline.Isend(me, topology->stage + 1, 1);
      ASSERT_TRUE(s.ok()) << s.status();
      send = *std::move(s);
    }
    if (send) {
      EXPECT_TRUE(send->Wait().ok());
    }
    if (receive) {
      EXPECT_TRUE(receive->Wait().ok());
      EXPECT_EQ(from_prev.At(0), topology->PrevStageRank());
    }
    EXPECT_TRUE(world.Barrier().ok());
  }
}

TEST(MpiCommunicatorTest, NegativeColorLeavesTheRankOutWithoutStallingTheOthers) {
  Communicator& world = World();
  absl::StatusOr<std::unique_ptr<Communicator>> group =
      world.Split(world.rank() == 0 ? -1 : 0, world.rank());
  if (world.rank() == 0) {
    ASSERT_FALSE(group.ok());
    EXPECT_THAT(std::string(group.status().message()), HasSubstr("color must be >= 0"));
  } else {
    ASSERT_TRUE(group.ok()) << group.status();
    EXPECT_EQ((*group)->size(), world.size() - 1);
    EXPECT_EQ((*group)->rank(), world.rank() - 1);
    EXPECT_TRUE((*group)->Barrier().ok());
  }
  EXPECT_TRUE(world.Barrier().ok());
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
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed()) {
      std::fprintf(stderr, "[r%d] FAILED %s.%s\n", rank_, info.test_suite_name(), info.name());
    }
  }

 private:
  int rank_;
};

int RunAllRanks(int argc, char** argv) {
  // mpirun hands the ranks a terminal, and interleaved colour codes from
  // several ranks are unreadable; --gtest_color=yes still wins.
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
  absl::Status agreed = g_world->AllReduceSum(failed);
  const int failed_ranks = agreed.ok() ? static_cast<int>(failed.At(0)) : -1;
  if (rank == 0) {
    std::printf("[mpi] %d of %d ranks had failures\n", failed_ranks, g_world->size());
    std::fflush(stdout);
  }
  g_world = nullptr;
  world->reset();
  return failed_ranks == 0 ? 0 : 1;
}

}  // namespace
}  // namespace pipetrain

int main(int argc, char** argv) { return pipetrain::RunAllRanks(argc, argv); }
