#include "parallel/gpu_placement.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pipetrain {

std::vector<std::vector<int>> FindSharedGpus(const std::vector<GpuPlacement>& placements) {
  // Ranks grouped by (host, gpu); ranks are visited in order, so each group
  // is sorted and a group's first rank is its smallest.
  std::map<std::pair<std::string, std::string>, std::vector<int>> by_gpu;
  for (size_t r = 0; r < placements.size(); ++r) {
    by_gpu[{placements[r].host, placements[r].gpu}].push_back(static_cast<int>(r));
  }
  std::vector<std::vector<int>> shared;
  for (auto& [key, ranks] : by_gpu) {
    if (ranks.size() > 1) shared.push_back(std::move(ranks));
  }
  std::sort(shared.begin(), shared.end(),
            [](const std::vector<int>& a, const std::vector<int>& b) { return a[0] < b[0]; });
  return shared;
}

std::string SharedGpuWarning(const std::vector<GpuPlacement>& placements,
                             const std::vector<std::vector<int>>& shared) {
  std::vector<std::string> groups;
  for (const std::vector<int>& ranks : shared) {
    const GpuPlacement& where = placements[static_cast<size_t>(ranks[0])];
    groups.push_back(absl::StrCat("ranks ", absl::StrJoin(ranks, ", "), " share GPU ", where.gpu,
                                  " on ", where.host));
  }
  return absl::StrCat(
      "warning: ", absl::StrJoin(groups, "; "),
      ". NCCL needs one GPU per rank, so device tensors will be copied to the host and moved "
      "with MPI instead (correct, much slower; for testing a pipeline on one GPU). Give each "
      "rank its own GPU for real runs.");
}

absl::StatusOr<Tensor> EncodePlacement(const GpuPlacement& placement) {
  const std::string joined = absl::StrCat(placement.host, std::string(1, '\0'), placement.gpu);
  if (placement.host.find('\0') != std::string::npos ||
      placement.gpu.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("GPU placement: host or GPU id contains a zero byte");
  }
  if (static_cast<int64_t>(joined.size()) > kPlacementCodeLength) {
    return absl::InvalidArgumentError(absl::StrCat("GPU placement: host and GPU id take ",
                                                   joined.size(), " bytes, more than ",
                                                   kPlacementCodeLength));
  }
  std::vector<int32_t> code(static_cast<size_t>(kPlacementCodeLength), 0);
  for (size_t i = 0; i < joined.size(); ++i) {
    code[i] = static_cast<int32_t>(static_cast<unsigned char>(joined[i]));
  }
  return Tensor::FromInts(code, {kPlacementCodeLength});
}

absl::StatusOr<GpuPlacement> DecodePlacement(const Tensor& code) {
  if (!code.defined() || code.dtype() != DType::kI32 || code.numel() != kPlacementCodeLength ||
      code.device() != Device::kCpu) {
    return absl::InvalidArgumentError("GPU placement: not an encoded placement");
  }
  const int32_t* values = code.data<int32_t>();
  std::string bytes;
  for (int64_t i = 0; i < kPlacementCodeLength; ++i) {
    if (values[i] < 0 || values[i] > 255) {
      return absl::InvalidArgumentError("GPU placement: code holds a value outside a byte");
    }
    bytes.push_back(static_cast<char>(values[i]));
  }
  const size_t split = bytes.find('\0');
  if (split == std::string::npos) {
    return absl::InvalidArgumentError("GPU placement: no separator between host and GPU id");
  }
  GpuPlacement placement;
  placement.host = bytes.substr(0, split);
  const size_t end = bytes.find('\0', split + 1);
  placement.gpu = bytes.substr(split + 1, end == std::string::npos ? std::string::npos
                                                                    : end - split - 1);
  return placement;
}

}  // namespace pipetrain
