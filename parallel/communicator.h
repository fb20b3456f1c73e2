// Communicator: how ranks move tensors. One interface, two transports: MPI for
// host memory (parallel/mpi_communicator.h) and, later, NCCL for device memory.
// Every call returns absl::Status; a failure names the operation, the peer and
// this rank. Collectives on a group are entered by every rank of the group in
// the same order. A collective whose ranks pass different tensors (dtype or
// element count) fails on every rank of the group: it neither hangs nor
// truncates. See docs/parallel.md, "Ranks and communicators".
#ifndef PIPETRAIN_PARALLEL_COMMUNICATOR_H_
#define PIPETRAIN_PARALLEL_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain {

// A started non-blocking send or receive; Wait() completes it (a second Wait
// returns OK at once). Dropping an unfinished request waits in the destructor,
// so MPI never writes into memory that has gone; the error, if any, is lost.
class CommRequest {
 public:
  virtual ~CommRequest() = default;
  virtual absl::Status Wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Non-blocking point-to-point. The request keeps the tensor's storage alive;
  // its contents must stay untouched until Wait() returns. The receiver passes
  // a tensor of the expected shape and dtype; a message of another size is an
  // error (from Wait) naming the peer, the tag and both sizes. `tag` (≥ 0)
  // separates streams (e.g. forward vs backward, micro-batch, chunk) between
  // the same two ranks. Post every send and receive of an exchange before
  // waiting on any of them: a large send completes only once its receive is
  // posted, so two ranks that each wait on a send first would deadlock.
  virtual absl::StatusOr<std::unique_ptr<CommRequest>> Isend(const Tensor& t, int peer,
                                                             int tag) = 0;
  virtual absl::StatusOr<std::unique_ptr<CommRequest>> Irecv(Tensor& t, int peer, int tag) = 0;

  // In-place sum over the group. Element i becomes
  // ((t_0[i] + t_1[i]) + t_2[i]) + … with t_r group rank r's tensor, added
  // in the tensor's dtype (bf16: in f32, rounded once): bitwise the same on
  // every rank and on every run, and equal to what one process adding the
  // partials in rank order would get.
  virtual absl::Status AllReduceSum(Tensor& t) = 0;
  // AllReduceSum, started: Wait() on the request completes it, and `t` must
  // stay untouched until then. A transport that can overlap the sum with
  // later work (NCCL, on its own stream) returns at once; the default sums
  // before returning. Every rank of the group starts its sums in the same order.
  virtual absl::StatusOr<std::unique_ptr<CommRequest>> StartAllReduceSum(Tensor& t);
  // True when StartAllReduceSum returns before the sum is done (it runs
  // beside the caller's later work). A caller inside a pipeline schedule
  // starts sums early only then: a sum that blocks there would only stall
  // the schedule, and could wait on a rank that waits on this one.
  virtual bool OverlapsCollectives() const { return false; }
  // Every rank gets every rank's `t` (same shape everywhere), in rank order.
  virtual absl::StatusOr<std::vector<Tensor>> AllGather(const Tensor& t) = 0;
  virtual absl::Status Broadcast(Tensor& t, int root) = 0;
  virtual absl::Status Barrier() = 0;

  // A sub-group of the ranks passing the same `color`, ordered by `key`
  // (MPI_Comm_split semantics). Every rank of this group must call it.
  virtual absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) = 0;

  // Ends the whole job from this rank with a message (a failed rank must not
  // leave the others waiting). Does not return. A rank that meets an error
  // the others do not share must end this way: returning from main runs
  // MPI_Finalize, which waits for ranks that may be waiting for this one.
  [[noreturn]] virtual void Abort(const std::string& message) = 0;
};

// A request that was complete when it was made.
class CompletedRequest final : public CommRequest {
 public:
  absl::Status Wait() override { return absl::OkStatus(); }
};

inline absl::StatusOr<std::unique_ptr<CommRequest>> Communicator::StartAllReduceSum(Tensor& t) {
  absl::Status summed = AllReduceSum(t);
  if (!summed.ok()) return summed;
  return std::unique_ptr<CommRequest>(new CompletedRequest());
}

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_COMMUNICATOR_H_
