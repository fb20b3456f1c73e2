#include "parallel/local_communicator.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace pipetrain {
namespace {

absl::Status NoPeer(const char* what, int peer) {
  return absl::FailedPreconditionError(absl::StrCat(
      what, " to rank ", peer, ": this is a one-process run (no launcher), rank 0 of 1"));
}

absl::Status CheckRoot(const char* what, int root) {
  if (root == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": root ", root, " is outside the one-process group"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CommRequest>> LocalCommunicator::Isend(const Tensor&, int peer,
                                                                      int) {
  return NoPeer("Isend", peer);
}

absl::StatusOr<std::unique_ptr<CommRequest>> LocalCommunicator::Irecv(Tensor&, int peer, int) {
  return NoPeer("Irecv", peer);
}

absl::Status LocalCommunicator::AllReduceSum(Tensor& t) {
  if (!t.defined()) return absl::InvalidArgumentError("AllReduceSum: undefined tensor");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> LocalCommunicator::AllGather(const Tensor& t) {
  if (!t.defined()) return absl::InvalidArgumentError("AllGather: undefined tensor");
  return std::vector<Tensor>{t};
}

absl::Status LocalCommunicator::Broadcast(Tensor& t, int root) {
  if (!t.defined()) return absl::InvalidArgumentError("Broadcast: undefined tensor");
  return CheckRoot("Broadcast", root);
}

absl::StatusOr<std::unique_ptr<Communicator>> LocalCommunicator::Split(int, int) {
  return std::unique_ptr<Communicator>(new LocalCommunicator());
}

void LocalCommunicator::Abort(const std::string& message) {
  std::fprintf(stderr, "pipetrain: %s\n", message.c_str());
  std::fflush(stderr);
  std::exit(1);
}

}  // namespace pipetrain
