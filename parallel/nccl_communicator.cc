// Built only with PIPETRAIN_CUDA (see parallel/CMakeLists.txt).
#include "parallel/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/cuda/cuda_context.h"
#include "core/device.h"
#include "core/status_macros.h"
#include "parallel/gpu_placement.h"
#include "parallel/host_staged_communicator.h"

namespace pipetrain {
namespace {

absl::Status NcclError(ncclResult_t result, const std::string& what, int rank) {
  return absl::InternalError(absl::StrCat(what, ": NCCL error on rank ", rank, ": ",
                                          ncclGetErrorString(result), " (",
                                          ncclGetLastError(nullptr), ")"));
}

#define PT_NCCL_RETURN_IF_ERROR(call, what, rank)                     \
  do {                                                                \
    const ncclResult_t pt_nccl_r_ = (call);                           \
    if (pt_nccl_r_ != ncclSuccess) return NcclError(pt_nccl_r_, what, rank); \
  } while (0)

absl::StatusOr<ncclDataType_t> NcclType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF64:
      return ncclFloat64;
    case DType::kI32:
      return ncclInt32;
    case DType::kBF16:
      return ncclBfloat16;
  }
  return absl::InvalidArgumentError("NCCL: unsupported dtype");
}

absl::Status CheckOnDevice(const Tensor& t, const std::string& what) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(what, ": undefined tensor"));
  if (t.device() != Device::kCuda) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": the tensor is on ", DeviceName(t.device()),
        "; NCCL carries device tensors only (host tensors go through MpiCommunicator)"));
  }
  return NcclType(t.dtype()).status();
}

// An event recorded on the stream that ran a transfer; destroyed with the
// last request that refers to it.
struct Batch {
  cudaEvent_t done = nullptr;
  bool launched = false;
  absl::Status status;
  ~Batch() {
    if (done != nullptr) cudaEventDestroy(done);
  }
};

}  // namespace

struct NcclCommunicator::Impl {
  struct Pending {
    bool send = false;
    Tensor tensor;
    int peer = 0;
  };

  std::unique_ptr<Communicator> owned_mpi;  // set for a Split result
  Communicator* mpi = nullptr;              // same group as the NCCL comms
  ncclComm_t p2p = nullptr;
  ncclComm_t coll = nullptr;
  cudaStream_t p2p_stream = nullptr;
  cudaStream_t coll_stream = nullptr;
  int rank = 0;
  int size = 1;
  bool aborted = false;
  std::vector<Pending> pending;
  std::shared_ptr<Batch> open_batch;  // the batch `pending` will launch as

  ~Impl() {
    if (aborted) return;
    if (p2p_stream != nullptr) cudaStreamSynchronize(p2p_stream);
    if (coll_stream != nullptr) cudaStreamSynchronize(coll_stream);
    if (p2p != nullptr) ncclCommDestroy(p2p);
    if (coll != nullptr) ncclCommDestroy(coll);
    if (p2p_stream != nullptr) cudaStreamDestroy(p2p_stream);
    if (coll_stream != nullptr) cudaStreamDestroy(coll_stream);
  }

  std::string Who() const { return absl::StrCat("rank ", rank, " of ", size); }

  // `stream` waits for everything queued so far on the compute stream.
  absl::Status AfterCompute(cudaStream_t stream) {
    cudaEvent_t ready;
    PT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming),
                            "NCCL: event");
    cudaError_t err = cudaEventRecord(ready, cuda::ComputeStream());
    if (err == cudaSuccess) err = cudaStreamWaitEvent(stream, ready, 0);
    cudaEventDestroy(ready);  // freed once the wait is satisfied
    PT_CUDA_RETURN_IF_ERROR(err, "NCCL: ordering after the compute stream");
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<Batch>> Record(cudaStream_t stream) {
    auto batch = std::make_shared<Batch>();
    PT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&batch->done, cudaEventDisableTiming),
                            "NCCL: event");
    PT_CUDA_RETURN_IF_ERROR(cudaEventRecord(batch->done, stream), "NCCL: event record");
    batch->launched = true;
    return batch;
  }

  // Launches the queued sends and receives as one NCCL group.
  absl::Status Flush() {
    if (pending.empty()) return absl::OkStatus();
    std::vector<Pending> ops = std::move(pending);
    pending.clear();
    std::shared_ptr<Batch> batch = std::move(open_batch);
    absl::Status status = [&]() -> absl::Status {
      PT_RETURN_IF_ERROR(AfterCompute(p2p_stream));
      PT_NCCL_RETURN_IF_ERROR(ncclGroupStart(), "NCCL send/recv", rank);
      ncclResult_t result = ncclSuccess;
      for (const Pending& op : ops) {
        const ncclDataType_t type = *NcclType(op.tensor.dtype());
        const size_t count = static_cast<size_t>(op.tensor.numel());
        result = op.send ? ncclSend(op.tensor.raw_data(), count, type, op.peer, p2p, p2p_stream)
                         : ncclRecv(op.tensor.raw_data(), count, type, op.peer, p2p, p2p_stream);
        if (result != ncclSuccess) break;
      }
      const ncclResult_t ended = ncclGroupEnd();
      if (result == ncclSuccess) result = ended;
      PT_NCCL_RETURN_IF_ERROR(result, "NCCL send/recv", rank);
      PT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&batch->done, cudaEventDisableTiming),
                              "NCCL: event");
      PT_CUDA_RETURN_IF_ERROR(cudaEventRecord(batch->done, p2p_stream), "NCCL: event record");
      return absl::OkStatus();
    }();
    batch->launched = true;
    batch->status = status;
    return status;
  }

  // The same small header from every rank, over MPI: a rank whose tensor
  // differs (or that failed its own checks) fails the collective everywhere.
  absl::Status Agree(const std::string& what, const absl::Status& local, const Tensor& t,
                     int root) {
    const int64_t numel = local.ok() ? t.numel() : -1;
    Tensor mine = Tensor::FromInts(
        {local.ok() ? 1 : 0, local.ok() ? static_cast<int32_t>(t.dtype()) : -1,
         static_cast<int32_t>(numel & 0x7fffffff), static_cast<int32_t>(numel >> 31), root},
        {5});
    PT_ASSIGN_OR_RETURN(std::vector<Tensor> all, mpi->AllGather(mine));
    PT_RETURN_IF_ERROR(local);
    for (int r = 0; r < size; ++r) {
      const int32_t* h = all[static_cast<size_t>(r)].data<int32_t>();
      if (h[0] == 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            what, ": rank ", r, " of the group could not take part (see its own error)"));
      }
      if (std::memcmp(h + 1, mine.data<int32_t>() + 1, 4 * sizeof(int32_t)) != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": rank ", r, " passes a different tensor or root than ", Who(),
            " (every rank must pass the same dtype, element count and root)"));
      }
    }
    return absl::OkStatus();
  }
};

namespace {

// Wait() makes the compute stream wait for the transfer's event and checks
// NCCL's asynchronous errors; the tensor stays alive until then.
class NcclRequest final : public CommRequest {
 public:
  NcclRequest(NcclCommunicator::Impl* impl, std::shared_ptr<Batch> batch, Tensor tensor,
              ncclComm_t comm)
      : impl_(impl), batch_(std::move(batch)), tensor_(std::move(tensor)), comm_(comm) {}
  ~NcclRequest() override {
    if (!done_) Wait().IgnoreError();
  }
  absl::Status Wait() override {
    if (done_) return absl::OkStatus();
    done_ = true;
    if (!batch_->launched) PT_RETURN_IF_ERROR(impl_->Flush());
    PT_RETURN_IF_ERROR(batch_->status);
    PT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(cuda::ComputeStream(), batch_->done, 0),
                            "NCCL: compute stream waiting for a transfer");
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess) return NcclError(async, "NCCL transfer", impl_->rank);
    tensor_ = Tensor();
    return absl::OkStatus();
  }

 private:
  NcclCommunicator::Impl* impl_;
  std::shared_ptr<Batch> batch_;
  Tensor tensor_;
  ncclComm_t comm_;
  bool done_ = false;
};

absl::Status CheckPeer(const NcclCommunicator::Impl& impl, int peer, const std::string& what) {
  if (peer < 0 || peer >= impl.size || peer == impl.rank) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": peer ", peer, " is not another rank of ", impl.Who()));
  }
  return absl::OkStatus();
}

// Creates the stream and the second (collective) communicator for `p2p`.
absl::Status Finish(NcclCommunicator::Impl& impl) {
  PT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&impl.p2p_stream, cudaStreamNonBlocking),
                          "NCCL: stream");
  PT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&impl.coll_stream, cudaStreamNonBlocking),
                          "NCCL: stream");
  PT_NCCL_RETURN_IF_ERROR(ncclCommSplit(impl.p2p, 0, impl.rank, &impl.coll, nullptr),
                          "ncclCommSplit (collective communicator)", impl.rank);
  return absl::OkStatus();
}

absl::StatusOr<GpuPlacement> LocalPlacement() {
  GpuPlacement placement;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  placement.host = host;
  PT_ASSIGN_OR_RETURN(int device, CurrentCudaDevice());
  // ncclCommInitRank uses the calling thread's current device.
  PT_CUDA_RETURN_IF_ERROR(cudaSetDevice(device), "cudaSetDevice");
  cudaDeviceProp props;
  PT_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&props, device), "cudaGetDeviceProperties");
  placement.gpu = "GPU-";
  for (int i = 0; i < 16; ++i) {
    absl::StrAppendFormat(&placement.gpu, "%02x", static_cast<unsigned char>(props.uuid.bytes[i]));
  }
  return placement;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateDeviceCommunicator(Communicator& mpi) {
  const int rank = mpi.rank();
  // Every rank takes part in the gather, even one without a GPU (its gpu id
  // is empty), so that all ranks fail together.
  absl::StatusOr<GpuPlacement> local = LocalPlacement();
  absl::StatusOr<Tensor> code = EncodePlacement(local.ok() ? *local : GpuPlacement{});
  PT_RETURN_IF_ERROR(code.status());
  PT_ASSIGN_OR_RETURN(std::vector<Tensor> codes, mpi.AllGather(*code));
  PT_RETURN_IF_ERROR(local.status());
  std::vector<GpuPlacement> placements;
  for (int r = 0; r < mpi.size(); ++r) {
    PT_ASSIGN_OR_RETURN(GpuPlacement p, DecodePlacement(codes[static_cast<size_t>(r)]));
    if (p.gpu.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "CreateDeviceCommunicator: rank ", r, " has no usable GPU (see its own error)"));
    }
    placements.push_back(std::move(p));
  }
  const std::vector<std::vector<int>> shared = FindSharedGpus(placements);
  if (!shared.empty()) {
    if (rank == 0) std::fprintf(stderr, "%s\n", SharedGpuWarning(placements, shared).c_str());
    return std::unique_ptr<Communicator>(new HostStagedCommunicator(mpi));
  }

  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  ncclResult_t id_result = ncclSuccess;
  if (rank == 0) id_result = ncclGetUniqueId(&id);
  // The id travels as i32 words; a failure on rank 0 travels as word 0 = -1
  // after the id, so every rank returns an error rather than hanging in init.
  static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0);
  constexpr int64_t kWords = sizeof(ncclUniqueId) / sizeof(int32_t);
  Tensor words = Tensor::Zeros({kWords + 1}, DType::kI32);
  std::memcpy(words.raw_data(), &id, sizeof(id));
  words.data<int32_t>()[kWords] = id_result == ncclSuccess ? 0 : -1;
  PT_RETURN_IF_ERROR(mpi.Broadcast(words, 0));
  if (id_result != ncclSuccess) return NcclError(id_result, "ncclGetUniqueId", rank);
  if (words.data<int32_t>()[kWords] != 0) {
    return absl::InternalError("CreateDeviceCommunicator: rank 0 could not make the NCCL id");
  }
  std::memcpy(&id, words.raw_data(), sizeof(id));

  auto impl = std::make_unique<NcclCommunicator::Impl>();
  impl->mpi = &mpi;
  impl->rank = rank;
  impl->size = mpi.size();
  PT_NCCL_RETURN_IF_ERROR(ncclCommInitRank(&impl->p2p, impl->size, id, rank), "ncclCommInitRank",
                          rank);
  PT_RETURN_IF_ERROR(Finish(*impl));
  return std::unique_ptr<Communicator>(new NcclCommunicator(std::move(impl)));
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclCommunicator::~NcclCommunicator() {
  if (impl_ != nullptr && !impl_->aborted) impl_->Flush().IgnoreError();
}

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }

absl::StatusOr<std::unique_ptr<CommRequest>> NcclCommunicator::Isend(const Tensor& t, int peer,
                                                                     int tag) {
  const std::string what = absl::StrCat("Isend to rank ", peer, " tag ", tag);
  PT_RETURN_IF_ERROR(CheckOnDevice(t, what));
  PT_RETURN_IF_ERROR(CheckPeer(*impl_, peer, what));
  if (impl_->open_batch == nullptr) impl_->open_batch = std::make_shared<Batch>();
  impl_->pending.push_back({true, t, peer});
  return std::unique_ptr<CommRequest>(new NcclRequest(impl_.get(), impl_->open_batch, t,
                                                      impl_->p2p));
}

absl::StatusOr<std::unique_ptr<CommRequest>> NcclCommunicator::Irecv(Tensor& t, int peer,
                                                                     int tag) {
  const std::string what = absl::StrCat("Irecv from rank ", peer, " tag ", tag);
  PT_RETURN_IF_ERROR(CheckOnDevice(t, what));
  PT_RETURN_IF_ERROR(CheckPeer(*impl_, peer, what));
  if (impl_->open_batch == nullptr) impl_->open_batch = std::make_shared<Batch>();
  impl_->pending.push_back({false, t, peer});
  return std::unique_ptr<CommRequest>(new NcclRequest(impl_.get(), impl_->open_batch, t,
                                                      impl_->p2p));
}

absl::StatusOr<std::unique_ptr<CommRequest>> NcclCommunicator::StartAllReduceSum(Tensor& t) {
  PT_RETURN_IF_ERROR(impl_->Flush());
  PT_RETURN_IF_ERROR(impl_->Agree("AllReduceSum", CheckOnDevice(t, "AllReduceSum"), t, 0));
  PT_RETURN_IF_ERROR(impl_->AfterCompute(impl_->coll_stream));
  PT_NCCL_RETURN_IF_ERROR(
      ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                    *NcclType(t.dtype()), ncclSum, impl_->coll, impl_->coll_stream),
      "ncclAllReduce", impl_->rank);
  PT_ASSIGN_OR_RETURN(std::shared_ptr<Batch> batch, impl_->Record(impl_->coll_stream));
  return std::unique_ptr<CommRequest>(new NcclRequest(impl_.get(), batch, t, impl_->coll));
}

absl::Status NcclCommunicator::AllReduceSum(Tensor& t) {
  PT_ASSIGN_OR_RETURN(std::unique_ptr<CommRequest> request, StartAllReduceSum(t));
  return request->Wait();
}

absl::StatusOr<std::vector<Tensor>> NcclCommunicator::AllGather(const Tensor& t) {
  PT_RETURN_IF_ERROR(impl_->Flush());
  PT_RETURN_IF_ERROR(impl_->Agree("AllGather", CheckOnDevice(t, "AllGather"), t, 0));
  const int64_t n = t.numel();
  Tensor all = Tensor::Empty({n * impl_->size}, t.dtype(), Device::kCuda);
  PT_RETURN_IF_ERROR(impl_->AfterCompute(impl_->coll_stream));
  PT_NCCL_RETURN_IF_ERROR(ncclAllGather(t.raw_data(), all.raw_data(), static_cast<size_t>(n),
                                        *NcclType(t.dtype()), impl_->coll, impl_->coll_stream),
                          "ncclAllGather", impl_->rank);
  PT_ASSIGN_OR_RETURN(std::shared_ptr<Batch> batch, impl_->Record(impl_->coll_stream));
  NcclRequest request(impl_.get(), batch, all, impl_->coll);
  PT_RETURN_IF_ERROR(request.Wait());
  std::vector<Tensor> parts;
  for (int r = 0; r < impl_->size; ++r) parts.push_back(all.View(r * n, t.shape()));
  return parts;
}

absl::Status NcclCommunicator::Broadcast(Tensor& t, int root) {
  PT_RETURN_IF_ERROR(impl_->Flush());
  absl::Status local = CheckOnDevice(t, "Broadcast");
  if (local.ok() && (root < 0 || root >= impl_->size)) {
    local = absl::InvalidArgumentError(absl::StrCat("Broadcast: root ", root, " is not a rank of ",
                                                    impl_->Who()));
  }
  PT_RETURN_IF_ERROR(impl_->Agree("Broadcast", local, t, root));
  PT_RETURN_IF_ERROR(impl_->AfterCompute(impl_->coll_stream));
  PT_NCCL_RETURN_IF_ERROR(
      ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                    *NcclType(t.dtype()), root, impl_->coll, impl_->coll_stream),
      "ncclBroadcast", impl_->rank);
  PT_ASSIGN_OR_RETURN(std::shared_ptr<Batch> batch, impl_->Record(impl_->coll_stream));
  NcclRequest request(impl_.get(), batch, t, impl_->coll);
  return request.Wait();
}

absl::Status NcclCommunicator::Barrier() {
  PT_RETURN_IF_ERROR(impl_->Flush());
  PT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl_->p2p_stream), "Barrier: NCCL stream");
  PT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl_->coll_stream), "Barrier: NCCL stream");
  PT_RETURN_IF_ERROR(SynchronizeDevice());
  return impl_->mpi->Barrier();
}

absl::StatusOr<std::unique_ptr<Communicator>> NcclCommunicator::Split(int color, int key) {
  PT_RETURN_IF_ERROR(impl_->Flush());
  // Every rank enters both splits, even with a negative color, so none waits.
  absl::StatusOr<std::unique_ptr<Communicator>> sub_mpi = impl_->mpi->Split(color, key);
  auto sub = std::make_unique<Impl>();
  const ncclResult_t result =
      ncclCommSplit(impl_->p2p, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &sub->p2p, nullptr);
  PT_RETURN_IF_ERROR(sub_mpi.status());
  PT_NCCL_RETURN_IF_ERROR(result, "ncclCommSplit", impl_->rank);
  sub->owned_mpi = std::move(*sub_mpi);
  sub->mpi = sub->owned_mpi.get();
  sub->rank = sub->mpi->rank();
  sub->size = sub->mpi->size();
  PT_RETURN_IF_ERROR(Finish(*sub));
  return std::unique_ptr<Communicator>(new NcclCommunicator(std::move(sub)));
}

void NcclCommunicator::Abort(const std::string& message) {
  impl_->aborted = true;
  if (impl_->p2p != nullptr) ncclCommAbort(impl_->p2p);
  if (impl_->coll != nullptr) ncclCommAbort(impl_->coll);
  impl_->mpi->Abort(message);
  std::abort();  // not reached: Abort does not return; this is for the compiler
}

}  // namespace pipetrain
