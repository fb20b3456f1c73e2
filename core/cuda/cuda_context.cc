#include "core/cuda/cuda_context.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pipetrain::cuda {
namespace {

// cuBLASLt's heuristics pick faster kernels with room to split K; 32 MiB is
// what NVIDIA recommends for Hopper.
constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;

std::mutex g_mu;
int g_requested_device = -1;
// Never destroyed: device tensors held by statics are freed after main returns,
// and their storage must still find the allocator then.
Context* g_context = nullptr;
absl::Status g_init_status = absl::OkStatus();
bool g_initialised = false;

// The node-local rank from the launcher's environment, 0 when there is none.
int LocalRank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}) {
    const char* value = std::getenv(name);
    int rank = 0;
    if (value != nullptr && absl::SimpleAtoi(value, &rank) && rank >= 0) return rank;
  }
  return 0;
}

absl::Status Create(Context* ctx) {
  int count = 0;
  PT_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (count == 0) return absl::FailedPreconditionError("no CUDA device is visible to this process");
  int device = g_requested_device >= 0 ? g_requested_device : LocalRank() % count;
  if (device >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA device ", device, " requested but only ", count, " visible"));
  }
  PT_CUDA_RETURN_IF_ERROR(cudaSetDevice(device), "cudaSetDevice");
  cudaDeviceProp prop;
  PT_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  ctx->device = device;
  ctx->device_name = absl::StrCat("cuda:", device, " (", prop.name, ")");
  PT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking),
                          "cudaStreamCreate");
  CachingAllocator::Backend backend;
  backend.allocate = [](size_t bytes) -> void* {
    void* ptr = nullptr;
    if (cudaMalloc(&ptr, bytes) != cudaSuccess) {
      (void)cudaGetLastError();  // so the next CheckLaunch does not report this error
      return nullptr;
    }
    return ptr;
  };
  backend.release = [](void* ptr) { (void)cudaFree(ptr); };
  backend.device_name = ctx->device_name;
  ctx->allocator = new CachingAllocator(std::move(backend));  // lives for the process
  PT_BLAS_RETURN_IF_ERROR(cublasLtCreate(&ctx->blas_lt), "cublasLtCreate");
  PT_CUDA_RETURN_IF_ERROR(cudaMalloc(&ctx->blas_workspace, kBlasWorkspaceBytes),
                          "cudaMalloc(cuBLASLt workspace)");
  ctx->blas_workspace_bytes = kBlasWorkspaceBytes;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Context*> GetContext() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_initialised) {
    g_initialised = true;
    auto ctx = std::make_unique<Context>();
    g_init_status = Create(ctx.get());
    if (g_init_status.ok()) g_context = ctx.release();
  }
  if (!g_init_status.ok()) return g_init_status;
  // The current device is per host thread: a thread other than the creator
  // (an executor or communication thread) would otherwise launch on device 0
  // with streams and memory of another device.
  // Not fatal here: Free (tensor destructors, even at exit) comes through this
  // path too; a launch on a wrong device reports its own error.
  thread_local bool device_set = false;
  if (!device_set) {
    if (cudaSetDevice(g_context->device) == cudaSuccess) {
      device_set = true;
    } else {
      (void)cudaGetLastError();
    }
  }
  return g_context;
}

Context& ContextOrDie() {
  absl::StatusOr<Context*> ctx = GetContext();
  if (!ctx.ok()) {
    std::fprintf(stderr, "pipetrain: cannot use the GPU: %s\n", ctx.status().ToString().c_str());
    std::abort();
  }
  return **ctx;
}

absl::Status SelectDevice(int ordinal) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_initialised) {
    if (g_context != nullptr && g_context->device == ordinal) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("UseCudaDevice(", ordinal, ") after the GPU was already chosen (",
                     g_context != nullptr ? g_context->device_name : "failed",
                     "); choose it before the first "
                     "device tensor"));
  }
  if (ordinal < 0) return absl::InvalidArgumentError("CUDA device ordinal must be >= 0");
  g_requested_device = ordinal;
  return absl::OkStatus();
}

absl::Status CudaError(cudaError_t err, absl::string_view what) {
  int device = -1;
  (void)cudaGetDevice(&device);
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorName(err), ": ",
                                          cudaGetErrorString(err), " (cuda:", device, ")"));
}

absl::Status BlasError(cublasStatus_t status, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": cuBLAS status ", static_cast<int>(status), " (",
                                          cublasLtGetStatusName(status), ")"));
}

absl::Status CheckLaunch(absl::string_view kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return CudaError(err, absl::StrCat("launching ", kernel));
  return absl::OkStatus();
}

}  // namespace pipetrain::cuda
