#include "parallel/mpi_communicator.h"

// The C API only: the deprecated C++ bindings add nothing and warn.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "parallel/comm_watchdog.h"

namespace pipetrain {

struct MpiCommunicator::Handle {
  MPI_Comm comm = MPI_COMM_NULL;
};

namespace {

// AllReduceSum works through the tensor in chunks of this many elements, so
// its scratch space stays bounded (64 MiB of f32) and MPI's int counts never
// overflow, whatever the tensor's size.
constexpr int64_t kReduceChunk = int64_t{1} << 24;

bool MpiFinalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

void FinalizeAtExit() {
  if (!MpiFinalized()) MPI_Finalize();
}

// The largest tag this MPI accepts (the standard promises at least 32767).
int TagUpperBound() {
  static const int bound = [] {
    int* value = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &value, &flag);
    return flag != 0 && value != nullptr ? *value : 32767;
  }();
  return bound;
}

std::string MpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return absl::StrCat("code ", code);
  return std::string(text, static_cast<size_t>(length));
}

absl::Status MpiFailure(int code, const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": MPI error: ", MpiErrorText(code)));
}

// The MPI type of one element; bf16 travels as raw 16-bit words. Null for a
// dtype MPI cannot carry.
MPI_Datatype MpiType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return MPI_FLOAT;
    case DType::kF64:
      return MPI_DOUBLE;
    case DType::kI32:
      return MPI_INT32_T;
    case DType::kBF16:
      return MPI_UINT16_T;
  }
  return MPI_DATATYPE_NULL;
}

// Whether `t` can be handed to MPI as one message; the error says why not.
absl::Status CheckTransferable(const Tensor& t, const std::string& what) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(what, ": undefined tensor"));
  if (t.device() != Device::kCpu) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": the tensor is on ", DeviceName(t.device()),
        "; MPI carries host tensors only (device tensors go through the NCCL communicator)"));
  }
  if (t.numel() > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", t.numel(),
                                                   " elements exceed MPI's limit of ", INT_MAX,
                                                   " per message; split the tensor"));
  }
  return absl::OkStatus();
}

// Every rank of a collective first tells the others what it brings, so that
// a rank that cannot take part, or brings a different tensor, turns into an
// error on every rank rather than a hang or a truncated buffer.
struct CollectiveArgs {
  int64_t ok = 0;
  int64_t dtype = -1;
  int64_t numel = -1;
  int64_t root = 0;
};

std::string DescribeArgs(const CollectiveArgs& args, bool with_root) {
  std::string text = absl::StrCat(DTypeName(static_cast<DType>(args.dtype)), "[", args.numel, "]");
  if (with_root) absl::StrAppend(&text, " root ", args.root);
  return text;
}

absl::Status AgreeOnArgs(MPI_Comm comm, int size, const std::string& what,
                         const absl::Status& local, const Tensor& t, int root, bool with_root) {
  CollectiveArgs mine;
  mine.ok = local.ok() ? 1 : 0;
  if (local.ok()) {
    mine.dtype = static_cast<int64_t>(t.dtype());
    mine.numel = t.numel();
  }
  mine.root = root;
  std::vector<CollectiveArgs> all(static_cast<size_t>(size));
  int rc = MPI_Allgather(&mine, 4, MPI_INT64_T, all.data(), 4, MPI_INT64_T, comm);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, what);
  if (!local.ok()) return local;
  std::vector<int> failed;
  bool agree = true;
  for (int r = 0; r < size; ++r) {
    const CollectiveArgs& other = all[static_cast<size_t>(r)];
    if (other.ok == 0) {
      failed.push_back(r);
    } else if (other.dtype != mine.dtype || other.numel != mine.numel ||
               (with_root && other.root != mine.root)) {
      agree = false;
    }
  }
  if (!failed.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": rank(s) ", absl::StrJoin(failed, ", "),
                     " of the group could not take part (see their own error)"));
  }
  if (!agree) {
    std::vector<std::string> described;
    for (int r = 0; r < size; ++r) {
      described.push_back(
          absl::StrCat("rank ", r, ": ", DescribeArgs(all[static_cast<size_t>(r)], with_root)));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     ": the ranks' tensors differ (every rank must pass the same dtype "
                     "and element count",
                     with_root ? " and root" : "", "): ", absl::StrJoin(described, "; ")));
  }
  return absl::OkStatus();
}

// out[i] = ((in_0[i] + in_1[i]) + …) + in_{n-1}[i], where in_q starts at
// q * stride: strictly in rank order, in the element type's arithmetic.
template <typename T>
void SumInRankOrder(const T* in, int64_t stride, int parts, int64_t count, T* out) {
  for (int64_t i = 0; i < count; ++i) {
    T sum = in[i];
    for (int q = 1; q < parts; ++q) sum += in[q * stride + i];
    out[i] = sum;
  }
}

// Signed overflow is undefined in C++; integer sums wrap, as on the GPU.
void SumInRankOrderI32(const int32_t* in, int64_t stride, int parts, int64_t count, int32_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    uint32_t sum = static_cast<uint32_t>(in[i]);
    for (int q = 1; q < parts; ++q) sum += static_cast<uint32_t>(in[q * stride + i]);
    out[i] = static_cast<int32_t>(sum);
  }
}

// bf16 has no arithmetic of its own: accumulate in f32, in rank order, and
// round once.
void SumInRankOrderBf16(const uint16_t* in, int64_t stride, int parts, int64_t count,
                        uint16_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    float sum = Bf16ToFloat(in[i]);
    for (int q = 1; q < parts; ++q) sum += Bf16ToFloat(in[q * stride + i]);
    out[i] = FloatToBf16(sum);
  }
}

void SumParts(DType dtype, const void* in, int64_t stride, int parts, int64_t count, void* out) {
  switch (dtype) {
    case DType::kF32:
      SumInRankOrder(static_cast<const float*>(in), stride, parts, count, static_cast<float*>(out));
      return;
    case DType::kF64:
      SumInRankOrder(static_cast<const double*>(in), stride, parts, count,
                     static_cast<double*>(out));
      return;
    case DType::kI32:
      SumInRankOrderI32(static_cast<const int32_t*>(in), stride, parts, count,
                        static_cast<int32_t*>(out));
      return;
    case DType::kBF16:
      SumInRankOrderBf16(static_cast<const uint16_t*>(in), stride, parts, count,
                         static_cast<uint16_t*>(out));
      return;
  }
}

// The world ranks of `comm`'s ranks `group_ranks` (for the watchdog's
// message: a job's user knows world ranks, not sub-group ones).
std::vector<int> WorldRanksOf(MPI_Comm comm, std::vector<int> group_ranks) {
  MPI_Group group, world;
  std::vector<int> out(group_ranks.size(), -1);
  int size = 0;
  MPI_Comm_size(comm, &size);
  for (int r : group_ranks) {
    if (r < 0 || r >= size) return out;  // a bad peer: the caller's check names it
  }
  if (MPI_Comm_group(comm, &group) != MPI_SUCCESS) return out;
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  MPI_Group_translate_ranks(group, static_cast<int>(group_ranks.size()), group_ranks.data(), world,
                            out.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return out;
}

// "world ranks 0, 2, 4" for a collective's watchdog line (the first 16).
std::string GroupInWorld(MPI_Comm comm, int size) {
  std::vector<int> ranks;
  for (int r = 0; r < size && r < 16; ++r) ranks.push_back(r);
  std::string text = "waits on world ranks ";
  const std::vector<int> world = WorldRanksOf(comm, ranks);
  for (size_t i = 0; i < world.size(); ++i) absl::StrAppend(&text, i ? ", " : "", world[i]);
  if (size > 16) absl::StrAppend(&text, " and ", size - 16, " more");
  return text;
}

class MpiRequest final : public CommRequest {
 public:
  MpiRequest(MPI_Request request, Tensor tensor, bool is_receive, std::string what)
      : request_(request),
        tensor_(std::move(tensor)),
        is_receive_(is_receive),
        what_(std::move(what)) {}

  // Dropping a started transfer would let MPI write into freed memory.
  ~MpiRequest() override {
    if (!done_ && !MpiFinalized()) Wait().IgnoreError();
  }

  absl::Status Wait() override {
    if (done_) return absl::OkStatus();
    done_ = true;
    MPI_Status status;
    int rc;
    {
      const CommWaitScope waiting(absl::StrCat("the end of ", what_));
      rc = MPI_Wait(&request_, &status);
    }
    int error_class = MPI_SUCCESS;
    if (rc != MPI_SUCCESS) MPI_Error_class(rc, &error_class);
    const bool truncated = is_receive_ && error_class == MPI_ERR_TRUNCATE;
    if (rc != MPI_SUCCESS && !truncated) return MpiFailure(rc, what_);
    if (!is_receive_) return absl::OkStatus();
    const int64_t expected_bytes = static_cast<int64_t>(tensor_.nbytes());
    MPI_Count got_bytes = -1;
    MPI_Get_elements_x(&status, MPI_BYTE, &got_bytes);
    if (!truncated && got_bytes == expected_bytes) return absl::OkStatus();
    std::string got;
    if (truncated && got_bytes <= expected_bytes) {
      // After a truncation MPI need not say how much was sent (Open MPI does).
      got = "a larger message";
    } else if (got_bytes < 0) {
      got = "a message of unknown size";
    } else {
      int got_count = MPI_UNDEFINED;
      MPI_Get_count(&status, MpiType(tensor_.dtype()), &got_count);
      got =
          got_count == MPI_UNDEFINED
              ? absl::StrCat(static_cast<int64_t>(got_bytes), " bytes (not whole elements)")
              : absl::StrCat(got_count, " elements (", static_cast<int64_t>(got_bytes), " bytes)");
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what_, ": expected ", tensor_.numel(), " ", DTypeName(tensor_.dtype()),
                     " elements (", expected_bytes, " bytes) of ", ShapeString(tensor_.shape()),
                     ", got ", got, "; the sender's tensor has another size"));
  }

 private:
  MPI_Request request_;
  Tensor tensor_;  // keeps the storage alive until the transfer is over
  bool is_receive_;
  std::string what_;
  bool done_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> MpiCommunicator::World() {
  if (MpiFinalized()) {
    return absl::FailedPreconditionError("MpiCommunicator::World: MPI was already finalized");
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = 0;
  if (!initialized) {
    // A failure here aborts inside MPI (no error handler exists yet), with
    // MPI's own message: nothing to add.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    std::atexit(FinalizeAtExit);
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_FUNNELED) {
    return absl::FailedPreconditionError(
        absl::StrCat("MpiCommunicator::World: MPI provides thread level ", provided,
                     ", below MPI_THREAD_FUNNELED (", MPI_THREAD_FUNNELED, ")"));
  }
  auto handle = std::make_unique<Handle>();
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &handle->comm);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, "MpiCommunicator::World: MPI_Comm_dup");
  MPI_Comm_set_errhandler(handle->comm, MPI_ERRORS_RETURN);
  return std::unique_ptr<Communicator>(new MpiCommunicator(std::move(handle)));
}

MpiCommunicator::MpiCommunicator(std::unique_ptr<Handle> handle) : handle_(std::move(handle)) {
  MPI_Comm_rank(handle_->comm, &rank_);
  MPI_Comm_size(handle_->comm, &size_);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
}

MpiCommunicator::~MpiCommunicator() {
  if (handle_->comm != MPI_COMM_NULL && !MpiFinalized()) MPI_Comm_free(&handle_->comm);
}

std::string MpiCommunicator::Who() const {
  return absl::StrCat("rank ", rank_, " of ", size_, " (world r", world_rank_, ")");
}

absl::StatusOr<std::unique_ptr<CommRequest>> MpiCommunicator::Isend(const Tensor& t, int peer,
                                                                    int tag) {
  const std::string what =
      absl::StrCat("Isend to rank ", peer, " (world rank ", WorldRanksOf(handle_->comm, {peer})[0],
                   ", tag ", tag, ") on ", Who());
  PT_RETURN_IF_ERROR(CheckTransferable(t, what));
  PT_CHECK_ARG(peer >= 0 && peer < size_, what, ": peer outside the group of ", size_);
  PT_CHECK_ARG(tag >= 0 && tag <= TagUpperBound(), what, ": tags must lie in [0, ", TagUpperBound(),
               "]");
  MPI_Request request;
  int rc = MPI_Isend(t.raw_data(), static_cast<int>(t.numel()), MpiType(t.dtype()), peer, tag,
                     handle_->comm, &request);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, what);
  return std::unique_ptr<CommRequest>(new MpiRequest(request, t, /*is_receive=*/false, what));
}

absl::StatusOr<std::unique_ptr<CommRequest>> MpiCommunicator::Irecv(Tensor& t, int peer, int tag) {
  const std::string what =
      absl::StrCat("Irecv from rank ", peer, " (world rank ",
                   WorldRanksOf(handle_->comm, {peer})[0], ", tag ", tag, ") on ", Who());
  PT_RETURN_IF_ERROR(CheckTransferable(t, what));
  PT_CHECK_ARG(peer >= 0 && peer < size_, what, ": peer outside the group of ", size_);
  PT_CHECK_ARG(tag >= 0 && tag <= TagUpperBound(), what, ": tags must lie in [0, ", TagUpperBound(),
               "]");
  MPI_Request request;
  int rc = MPI_Irecv(t.raw_data(), static_cast<int>(t.numel()), MpiType(t.dtype()), peer, tag,
                     handle_->comm, &request);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, what);
  return std::unique_ptr<CommRequest>(new MpiRequest(request, t, /*is_receive=*/true, what));
}

absl::Status MpiCommunicator::AllReduceSum(Tensor& t) {
  const std::string what = absl::StrCat("AllReduceSum on ", Who());
  const CommWaitScope waiting(absl::StrCat(what, ", which ", GroupInWorld(handle_->comm, size_)));
  absl::Status local = CheckTransferable(t, what);
  PT_RETURN_IF_ERROR(AgreeOnArgs(handle_->comm, size_, what, local, t, 0, false));
  if (size_ == 1 || t.numel() == 0) return absl::OkStatus();

  // Each chunk: rank r owns the r-th slice; an all-to-all hands it every
  // rank's copy of that slice, it sums them in rank order, and an all-gather
  // hands the sums back. Only the owner computes a sum, so all ranks agree.
  const MPI_Datatype type = MpiType(t.dtype());
  const size_t element = DTypeSize(t.dtype());
  const int parts = size_;
  std::vector<int> send_counts(parts), send_displs(parts), recv_counts(parts), recv_displs(parts);
  std::vector<char> scratch;
  char* data = static_cast<char*>(t.raw_data());
  for (int64_t begin = 0; begin < t.numel(); begin += kReduceChunk) {
    const int64_t chunk = std::min(kReduceChunk, t.numel() - begin);
    for (int r = 0; r < parts; ++r) {
      const int64_t lo = chunk * r / parts, hi = chunk * (r + 1) / parts;
      send_counts[r] = static_cast<int>(hi - lo);
      send_displs[r] = static_cast<int>(lo);
    }
    const int mine = send_counts[rank_];
    for (int q = 0; q < parts; ++q) {
      recv_counts[q] = mine;
      recv_displs[q] = q * mine;
    }
    scratch.resize(static_cast<size_t>(parts) * mine * element);
    char* chunk_data = data + begin * element;
    int rc = MPI_Alltoallv(chunk_data, send_counts.data(), send_displs.data(), type, scratch.data(),
                           recv_counts.data(), recv_displs.data(), type, handle_->comm);
    if (rc != MPI_SUCCESS) return MpiFailure(rc, absl::StrCat(what, " (reduce-scatter)"));
    SumParts(t.dtype(), scratch.data(), mine, parts, mine,
             chunk_data + static_cast<size_t>(send_displs[rank_]) * element);
    rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, chunk_data, send_counts.data(),
                        send_displs.data(), type, handle_->comm);
    if (rc != MPI_SUCCESS) return MpiFailure(rc, absl::StrCat(what, " (all-gather)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> MpiCommunicator::AllGather(const Tensor& t) {
  const std::string what = absl::StrCat("AllGather on ", Who());
  const CommWaitScope waiting(absl::StrCat(what, ", which ", GroupInWorld(handle_->comm, size_)));
  absl::Status local = CheckTransferable(t, what);
  if (local.ok() && t.numel() * size_ > INT_MAX) {
    // MPI addresses the gathered buffer with int displacements.
    local = absl::InvalidArgumentError(absl::StrCat(what, ": ", t.numel(), " elements x ", size_,
                                                    " ranks exceed MPI's limit of ", INT_MAX));
  }
  PT_RETURN_IF_ERROR(AgreeOnArgs(handle_->comm, size_, what, local, t, 0, false));
  const int64_t n = t.numel();
  Tensor gathered = Tensor::Empty({size_ * n}, t.dtype());
  int rc = MPI_Allgather(t.raw_data(), static_cast<int>(n), MpiType(t.dtype()), gathered.raw_data(),
                         static_cast<int>(n), MpiType(t.dtype()), handle_->comm);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, what);
  std::vector<Tensor> parts;
  parts.reserve(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) parts.push_back(gathered.View(r * n, t.shape()));
  return parts;
}

absl::Status MpiCommunicator::Broadcast(Tensor& t, int root) {
  const std::string what = absl::StrCat("Broadcast from rank ", root, " on ", Who());
  const CommWaitScope waiting(absl::StrCat(what, ", which ", GroupInWorld(handle_->comm, size_)));
  absl::Status local = CheckTransferable(t, what);
  if (local.ok() && (root < 0 || root >= size_)) {
    local = absl::InvalidArgumentError(
        absl::StrCat(what, ": root outside the group of ", size_, " ranks"));
  }
  PT_RETURN_IF_ERROR(AgreeOnArgs(handle_->comm, size_, what, local, t, root, true));
  int rc =
      MPI_Bcast(t.raw_data(), static_cast<int>(t.numel()), MpiType(t.dtype()), root, handle_->comm);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, what);
  return absl::OkStatus();
}

absl::Status MpiCommunicator::Barrier() {
  const CommWaitScope waiting(
      absl::StrCat("Barrier on ", Who(), ", which ", GroupInWorld(handle_->comm, size_)));
  int rc = MPI_Barrier(handle_->comm);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, absl::StrCat("Barrier on ", Who()));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Communicator>> MpiCommunicator::Split(int color, int key) {
  const std::string what = absl::StrCat("Split(color ", color, ", key ", key, ") on ", Who());
  const CommWaitScope waiting(absl::StrCat(what, ", which ", GroupInWorld(handle_->comm, size_)));
  auto handle = std::make_unique<Handle>();
  int rc = MPI_Comm_split(handle_->comm, color < 0 ? MPI_UNDEFINED : color, key, &handle->comm);
  if (rc != MPI_SUCCESS) return MpiFailure(rc, what);
  if (color < 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": color must be >= 0"));
  }
  MPI_Comm_set_errhandler(handle->comm, MPI_ERRORS_RETURN);
  return std::unique_ptr<Communicator>(new MpiCommunicator(std::move(handle)));
}

void MpiCommunicator::Abort(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "[r%d] fatal: %s\n", world_rank_, message.c_str());
  std::fflush(stderr);
  if (!MpiFinalized()) MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);  // MPI_Abort does not return; this is for the compiler
}

}  // namespace pipetrain
