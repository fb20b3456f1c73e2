// MpiCommunicator: the Communicator over MPI, for host (CPU) tensors of dtype
// f32, f64, i32 and bf16 (moved as raw 2-byte words).
//
// MPI is used from one thread only (MPI_THREAD_FUNNELED): the executor's
// thread. <mpi.h> stays out of this header, so including it costs nothing.
//
// Collectives first exchange a small header (dtype, element count, root and
// whether the rank could take part): a rank whose tensor disagrees with the
// others, or that cannot take part, makes every rank of the group return an
// error naming the ranks, instead of some ranks waiting forever or MPI
// silently truncating.
#ifndef PIPETRAIN_PARALLEL_MPI_COMMUNICATOR_H_
#define PIPETRAIN_PARALLEL_MPI_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "parallel/communicator.h"

namespace pipetrain {

class MpiCommunicator final : public Communicator {
 public:
  // A communicator over all processes of the job (a duplicate of
  // MPI_COMM_WORLD, so pipetrain's messages never meet anyone else's).
  // Initialises MPI on first use (MPI_Init_thread, FUNNELED) and registers
  // MPI_Finalize to run at exit. Collective: every process calls it. Without a
  // launcher this is a world of one, which is how a single process runs.
  static absl::StatusOr<std::unique_ptr<Communicator>> World();

  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::StatusOr<std::unique_ptr<CommRequest>> Isend(const Tensor& t, int peer, int tag) override;
  absl::StatusOr<std::unique_ptr<CommRequest>> Irecv(Tensor& t, int peer, int tag) override;

  // Deterministic: element i of the result is
  //   ((t_0[i] + t_1[i]) + t_2[i]) + … + t_{n-1}[i]
  // with t_r the tensor of group rank r, added in the tensor's dtype (bf16:
  // accumulated in f32 in the same order and rounded once). One rank computes
  // each element and sends its bits to the others, so every rank holds the
  // same bits, on every run, whatever MPI's own reduction algorithms would do.
  // Cost: a reduce-scatter (all-to-all) and an all-gather, each moving
  // (n−1)/n of the tensor per rank: the same traffic as a ring all-reduce.
  absl::Status AllReduceSum(Tensor& t) override;
  absl::StatusOr<std::vector<Tensor>> AllGather(const Tensor& t) override;
  absl::Status Broadcast(Tensor& t, int root) override;
  absl::Status Barrier() override;
  // A negative color leaves this rank out (it still takes part in the split,
  // so nobody waits) and returns InvalidArgument.
  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) override;
  // Prints "[r<world rank>] fatal: <message>" to stderr and calls MPI_Abort
  // on MPI_COMM_WORLD, which takes every process of the job down.
  [[noreturn]] void Abort(const std::string& message) override;

  // This process's rank in MPI_COMM_WORLD (for messages; rank() is the
  // group's).
  int world_rank() const { return world_rank_; }

 private:
  struct Handle;  // the MPI_Comm
  explicit MpiCommunicator(std::unique_ptr<Handle> handle);

  // "rank 1 of 2 (world r3)": who speaks, in error messages.
  std::string Who() const;

  std::unique_ptr<Handle> handle_;
  int rank_ = 0;
  int size_ = 1;
  int world_rank_ = 0;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_MPI_COMMUNICATOR_H_
