// NcclCommunicator: the Communicator for device (GPU) tensors, over NCCL.
// Built only with PIPETRAIN_CUDA; this header holds no CUDA or NCCL type.
//
// Setup (CreateDeviceCommunicator, collective over the MPI communicator):
// every rank's (host, GPU UUID) is gathered; if two ranks share a GPU, which
// NCCL refuses, a warning goes to stderr and a HostStagedCommunicator is
// returned instead. Otherwise rank 0 makes the NCCL unique id, MPI broadcasts
// it, and two NCCL communicators are created once, up front: one for
// point-to-point traffic, one for collectives, each with its own stream, so
// an all-reduce never waits behind (or blocks) pipeline sends.
//
// Streams: every transfer first makes its stream wait for the work queued so
// far on the compute stream (so the data is ready); Wait() makes the compute
// stream wait for the transfer. Neither blocks the host. A request keeps its
// tensor alive, and the communicator must outlive its requests.
//
// Point-to-point: Isend and Irecv are queued, not launched; the first Wait
// (or any collective) launches everything queued in one ncclGroupStart/End.
// So a stage posting its sends and receives to both neighbours before waiting
// (as the interface asks) gets them as one grouped exchange, which cannot
// deadlock. NCCL has no tags: messages between two ranks match in the order
// they are posted, so both sides must post them in the same order.
//
// AllReduceSum is NOT the bitwise rank-order sum the interface promises for
// MPI: NCCL's ring/tree order depends on the topology and algorithm. For a
// fixed topology, NCCL version and environment it is deterministic (same
// bits on every rank and every run), but not equal to one process adding the
// partials in rank order. Tests of bitwise sums use MpiCommunicator.
//
// Collectives still exchange a small header over MPI first (dtype, element
// count, root), so ranks passing different tensors all fail instead of NCCL
// hanging or reading out of bounds.
#ifndef PIPETRAIN_PARALLEL_NCCL_COMMUNICATOR_H_
#define PIPETRAIN_PARALLEL_NCCL_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "parallel/communicator.h"

namespace pipetrain {

// The communicator for device tensors: NCCL, or the host-staged MPI fallback
// when two ranks share a GPU. Collective over `mpi`, which must outlive the
// result. FailedPrecondition on a build without CUDA.
absl::StatusOr<std::unique_ptr<Communicator>> CreateDeviceCommunicator(Communicator& mpi);

class NcclCommunicator final : public Communicator {
 public:
  struct Impl;
  // Use CreateDeviceCommunicator.
  explicit NcclCommunicator(std::unique_ptr<Impl> impl);
  ~NcclCommunicator() override;

  int rank() const override;
  int size() const override;

  // Device tensors only (f32, f64, i32, bf16).
  absl::StatusOr<std::unique_ptr<CommRequest>> Isend(const Tensor& t, int peer, int tag) override;
  absl::StatusOr<std::unique_ptr<CommRequest>> Irecv(Tensor& t, int peer, int tag) override;
  // Deterministic for a fixed topology, not bitwise rank order (see above).
  absl::Status AllReduceSum(Tensor& t) override;
  // Starts the sum on the collective stream and returns at once, so the
  // backward of earlier layers overlaps with it; Wait() orders the compute
  // stream after it. `t` must stay untouched until then.
  absl::StatusOr<std::unique_ptr<CommRequest>> StartAllReduceSum(Tensor& t) override;
  bool OverlapsCollectives() const override { return true; }
  absl::StatusOr<std::vector<Tensor>> AllGather(const Tensor& t) override;
  absl::Status Broadcast(Tensor& t, int root) override;
  // Waits for this rank's queued GPU work and transfers, then MPI's barrier.
  absl::Status Barrier() override;
  // ncclCommSplit of both communicators, and a split of the MPI one.
  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) override;
  // ncclCommAbort, then the MPI communicator's Abort (ends every rank).
  [[noreturn]] void Abort(const std::string& message) override;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_NCCL_COMMUNICATOR_H_
