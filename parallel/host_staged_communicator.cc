#include "parallel/host_staged_communicator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/device.h"
#include "core/status_macros.h"
#include "parallel/nccl_communicator.h"

namespace pipetrain {
namespace {

bool OnHost(const Tensor& t) { return !t.defined() || t.device() == Device::kCpu; }

// A receive into a device tensor: MPI fills a host buffer, Wait copies it to
// the device tensor (which the request keeps alive).
class StagedReceive final : public CommRequest {
 public:
  StagedReceive(std::unique_ptr<CommRequest> inner, Tensor host, Tensor device)
      : inner_(std::move(inner)), host_(std::move(host)), device_(std::move(device)) {}
  ~StagedReceive() override {
    if (!done_) Wait().IgnoreError();
  }
  absl::Status Wait() override {
    if (done_) return absl::OkStatus();
    done_ = true;
    PT_RETURN_IF_ERROR(inner_->Wait());
    return CopyTensor(host_, device_);
  }

 private:
  std::unique_ptr<CommRequest> inner_;
  Tensor host_;
  Tensor device_;
  bool done_ = false;
};

absl::StatusOr<Tensor> ToHost(const Tensor& t, const char* what) {
  absl::StatusOr<Tensor> host = CopyToDevice(t, Device::kCpu);
  if (!host.ok()) {
    return absl::Status(host.status().code(),
                        absl::StrCat(what, ": staging to the host: ", host.status().message()));
  }
  return host;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CommRequest>> HostStagedCommunicator::Isend(const Tensor& t,
                                                                           int peer, int tag) {
  if (OnHost(t)) return mpi_->Isend(t, peer, tag);
  PT_ASSIGN_OR_RETURN(Tensor host, ToHost(t, "Isend"));
  return mpi_->Isend(host, peer, tag);
}

absl::StatusOr<std::unique_ptr<CommRequest>> HostStagedCommunicator::Irecv(Tensor& t, int peer,
                                                                           int tag) {
  if (OnHost(t)) return mpi_->Irecv(t, peer, tag);
  Tensor host = Tensor::Empty(t.shape(), t.dtype(), Device::kCpu);
  PT_ASSIGN_OR_RETURN(std::unique_ptr<CommRequest> inner, mpi_->Irecv(host, peer, tag));
  return std::unique_ptr<CommRequest>(new StagedReceive(std::move(inner), host, t));
}

absl::Status HostStagedCommunicator::AllReduceSum(Tensor& t) {
  if (OnHost(t)) return mpi_->AllReduceSum(t);
  // A failed staging copy still enters the collective (with an undefined
  // tensor), so the other ranks get an error instead of waiting.
  absl::StatusOr<Tensor> host = ToHost(t, "AllReduceSum");
  Tensor staged = host.ok() ? *host : Tensor();
  absl::Status reduced = mpi_->AllReduceSum(staged);
  PT_RETURN_IF_ERROR(host.status());
  PT_RETURN_IF_ERROR(reduced);
  return CopyTensor(staged, t);
}

absl::StatusOr<std::vector<Tensor>> HostStagedCommunicator::AllGather(const Tensor& t) {
  if (OnHost(t)) return mpi_->AllGather(t);
  absl::StatusOr<Tensor> host = ToHost(t, "AllGather");
  absl::StatusOr<std::vector<Tensor>> gathered = mpi_->AllGather(host.ok() ? *host : Tensor());
  PT_RETURN_IF_ERROR(host.status());
  PT_RETURN_IF_ERROR(gathered.status());
  std::vector<Tensor> out;
  for (const Tensor& part : *gathered) {
    PT_ASSIGN_OR_RETURN(Tensor back, CopyToDevice(part, t.device()));
    out.push_back(std::move(back));
  }
  return out;
}

absl::Status HostStagedCommunicator::Broadcast(Tensor& t, int root) {
  if (OnHost(t)) return mpi_->Broadcast(t, root);
  absl::StatusOr<Tensor> host = ToHost(t, "Broadcast");
  Tensor staged = host.ok() ? *host : Tensor();
  absl::Status sent = mpi_->Broadcast(staged, root);
  PT_RETURN_IF_ERROR(host.status());
  PT_RETURN_IF_ERROR(sent);
  return CopyTensor(staged, t);
}

absl::StatusOr<std::unique_ptr<Communicator>> HostStagedCommunicator::Split(int color, int key) {
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> sub, mpi_->Split(color, key));
  return std::unique_ptr<Communicator>(new HostStagedCommunicator(std::move(sub)));
}

#if !PIPETRAIN_WITH_CUDA
// The CPU-only build has no device memory to communicate.
absl::StatusOr<std::unique_ptr<Communicator>> CreateDeviceCommunicator(Communicator& /*mpi*/) {
  return absl::FailedPreconditionError(
      "CreateDeviceCommunicator: pipetrain was built without CUDA (PIPETRAIN_CUDA=OFF)");
}
#endif

}  // namespace pipetrain
