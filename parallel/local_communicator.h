// LocalCommunicator: the group of one process. A run without a launcher is
// the 1-stage × 1-replica case of the pipeline trainer (DESIGN.md decision
// 9); with this communicator it needs no MPI at all. Collectives are the
// identity; point-to-point has no peer and is an error.
#ifndef PIPETRAIN_PARALLEL_LOCAL_COMMUNICATOR_H_
#define PIPETRAIN_PARALLEL_LOCAL_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace pipetrain {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }

  absl::StatusOr<std::unique_ptr<CommRequest>> Isend(const Tensor& t, int peer, int tag) override;
  absl::StatusOr<std::unique_ptr<CommRequest>> Irecv(Tensor& t, int peer, int tag) override;
  absl::Status AllReduceSum(Tensor& t) override;
  // One entry: `t` itself (not a copy).
  absl::StatusOr<std::vector<Tensor>> AllGather(const Tensor& t) override;
  absl::Status Broadcast(Tensor& t, int root) override;
  absl::Status Barrier() override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) override;
  // Prints the message and exits with status 1: with no other rank, there is
  // no one to take down but this process.
  [[noreturn]] void Abort(const std::string& message) override;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_LOCAL_COMMUNICATOR_H_
