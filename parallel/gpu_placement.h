// Which GPU each rank drives, and whether two ranks drive the same one.
//
// NCCL refuses a communicator in which two ranks use the same GPU ("Duplicate
// GPU detected"), yet a pipeline run is often tested on a machine with one
// GPU. CreateDeviceCommunicator (parallel/nccl_communicator.h) gathers every
// rank's placement, asks FindSharedGpus, and falls back to host-staged MPI
// transfers with SharedGpuWarning when a GPU is shared. Pure logic: tested on
// the CPU (tests/gpu_placement_test.cc).
#ifndef PIPETRAIN_PARALLEL_GPU_PLACEMENT_H_
#define PIPETRAIN_PARALLEL_GPU_PLACEMENT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain {

struct GpuPlacement {
  std::string host;  // the node's hostname
  std::string gpu;   // the GPU's UUID (or PCI bus id); unique on its node
};

// The ranks that share a GPU: one entry per GPU used by two or more ranks,
// each listing its ranks in increasing order; the entries are ordered by
// their first rank. Empty when every rank has a GPU of its own. Two ranks
// share a GPU only when both the host and the GPU id are equal.
std::vector<std::vector<int>> FindSharedGpus(const std::vector<GpuPlacement>& placements);

// The warning printed on stderr before falling back, naming the ranks, the
// host and GPU they share, and what the fallback costs.
std::string SharedGpuWarning(const std::vector<GpuPlacement>& placements,
                             const std::vector<std::vector<int>>& shared);

// Placements travel over Communicator::AllGather, which needs the same shape
// on every rank: one i32 per byte, "host\0gpu", zero-padded to this length.
inline constexpr int64_t kPlacementCodeLength = 512;
// Fails when host and gpu together do not fit, or contain a zero byte.
absl::StatusOr<Tensor> EncodePlacement(const GpuPlacement& placement);
absl::StatusOr<GpuPlacement> DecodePlacement(const Tensor& code);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_GPU_PLACEMENT_H_
