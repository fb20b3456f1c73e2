// HostStagedCommunicator: device tensors over MPI, through host copies.
//
// The fallback when NCCL cannot be used, chiefly when two ranks share one GPU
// (testing a pipeline on a single GPU; see parallel/gpu_placement.h). A
// device tensor is copied to the host (waiting for the compute stream),
// moved or reduced by the wrapped MPI communicator, and copied back. Host
// tensors go straight to MPI. Since the arithmetic is MPI's, AllReduceSum
// keeps the interface's promise of a bitwise rank-order sum. Slow: every
// transfer crosses PCIe twice and waits for the GPU.
#ifndef PIPETRAIN_PARALLEL_HOST_STAGED_COMMUNICATOR_H_
#define PIPETRAIN_PARALLEL_HOST_STAGED_COMMUNICATOR_H_

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace pipetrain {

class HostStagedCommunicator final : public Communicator {
 public:
  // Wraps `mpi` (a host-memory communicator), which must outlive this one.
  explicit HostStagedCommunicator(Communicator& mpi) : mpi_(&mpi) {}
  // Wraps and owns `mpi` (what Split returns).
  explicit HostStagedCommunicator(std::unique_ptr<Communicator> mpi)
      : owned_(std::move(mpi)), mpi_(owned_.get()) {}

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }

  // A device send copies to the host at once, so the caller's tensor is free
  // again when Isend returns; a device receive lands in the tensor at Wait.
  absl::StatusOr<std::unique_ptr<CommRequest>> Isend(const Tensor& t, int peer, int tag) override;
  absl::StatusOr<std::unique_ptr<CommRequest>> Irecv(Tensor& t, int peer, int tag) override;
  absl::Status AllReduceSum(Tensor& t) override;
  // The gathered tensors are on the device of `t`.
  absl::StatusOr<std::vector<Tensor>> AllGather(const Tensor& t) override;
  absl::Status Broadcast(Tensor& t, int root) override;
  absl::Status Barrier() override { return mpi_->Barrier(); }
  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) override;
  [[noreturn]] void Abort(const std::string& message) override {
    mpi_->Abort(message);
    std::abort();  // not reached: Abort does not return; this is for the compiler
  }

 private:
  std::unique_ptr<Communicator> owned_;
  Communicator* mpi_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_HOST_STAGED_COMMUNICATOR_H_
