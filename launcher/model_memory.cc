#include "launcher/model_memory.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "core/util/host_memory.h"
#include "launcher/plan_memory.h"
#include "launcher/trainer/stage_layout.h"
#include "parallel/schedule.h"

namespace pipetrain {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// "1906.5", or three significant digits below 1 GiB ("0.00254").
std::string GiB(int64_t bytes) {
  const double gib = static_cast<double>(bytes) / kGiB;
  return gib >= 1 ? absl::StrFormat("%.1f", gib) : absl::StrFormat("%.3g", gib);
}

std::string Grouped(int64_t n) {
  const std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Bytes of one element of the parameter store: the master dtype. bf16 keeps
// f32 masters (DESIGN.md decision 3) and adds a 2-byte compute copy.
int64_t MasterBytes(const TrainConfig& t) { return t.dtype() == "f64" ? 8 : 4; }

// A stage's buffers per ModelStage::Create (weights, gradients, the compute
// copy, one partial embedding gradient per use) and, when training, the
// trainer's two AdamW moments of the master dtype.
int64_t StageBytes(const StageParameterCount& c, int64_t element, bool bf16, ModelUse use) {
  const int64_t per_parameter = element * (use == ModelUse::kTraining ? 4 : 2) + (bf16 ? 2 : 0);
  return c.total * per_parameter + c.embedding * c.embedding_uses * element;
}

// One integer in a cgroup file; nullopt for "max" or when unreadable.
std::optional<int64_t> CgroupValue(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return std::nullopt;
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 0) return std::nullopt;
  return value;
}

}  // namespace

absl::StatusOr<RankModelMemory> HeaviestRankMemory(const RunSpec& spec, ModelUse use) {
  const ModelSpec& model = spec.model();
  const int total = model.encoder_layers() + model.decoder_layers();
  if (use == ModelUse::kInference) {
    PT_ASSIGN_OR_RETURN(const StageParameterCount c, CountStageParameters(model, 0, total));
    return RankModelMemory{.rank = 0,
                           .first_layer = 0,
                           .last_layer = total,
                           .parameters = c.total,
                           .bytes = StageBytes(c, 4, false, use)};
  }
  const TrainConfig& t = spec.train();
  const int stages = std::max(1, t.pipeline().stages());
  const int chunks = std::max(1, t.pipeline().chunks());
  PT_ASSIGN_OR_RETURN(const std::vector<int> bounds, StageBounds(spec));
  PT_CHECK_ARG(static_cast<int64_t>(bounds.size()) == int64_t{stages} * chunks + 1,
               "memory estimate: ", bounds.size() - 1, " virtual stages for ", stages, " stages x ",
               chunks, " chunks");
  const std::vector<std::vector<int>> placement = InterleavedPlacement(stages, chunks);
  const bool bf16 = t.dtype() == "bf16";
  RankModelMemory heaviest;
  heaviest.bytes = -1;
  for (int r = 0; r < stages; ++r) {
    RankModelMemory rank{.rank = r, .first_layer = total, .last_layer = 0};
    for (int vs : placement[r]) {
      PT_ASSIGN_OR_RETURN(const StageParameterCount c,
                          CountStageParameters(model, bounds[vs], bounds[vs + 1]));
      rank.parameters += c.total;
      rank.bytes += StageBytes(c, MasterBytes(t), bf16, use);
      rank.first_layer = std::min(rank.first_layer, bounds[vs]);
      rank.last_layer = std::max(rank.last_layer, bounds[vs + 1]);
    }
    if (rank.bytes > heaviest.bytes) heaviest = rank;
  }
  return heaviest;
}

absl::StatusOr<std::optional<HostMemory>> AvailableHostMemory() {
  if (const char* set = std::getenv("PIPETRAIN_HOST_MEMORY_GIB"); set != nullptr && *set) {
    double gib = 0;
    PT_CHECK_ARG(absl::SimpleAtod(set, &gib) && std::isfinite(gib) && gib > 0 && gib < 1e9,
                 "PIPETRAIN_HOST_MEMORY_GIB='", set,
                 "' is not a number of GiB > 0; unset it to use what /proc/meminfo reports");
    return HostMemory{.bytes = static_cast<int64_t>(gib * kGiB),
                      .source = "PIPETRAIN_HOST_MEMORY_GIB"};
  }
  std::optional<HostMemory> host;
  if (const absl::StatusOr<int64_t> available = AvailableBytes(); available.ok()) {
    host = HostMemory{.bytes = *available, .source = "MemAvailable in /proc/meminfo"};
  }
  // In a container /proc/meminfo shows the whole machine; the cgroup's
  // limit is what the kernel enforces on this job (v2, else v1, whose
  // "no limit" is a huge number and loses the comparison).
  struct CgroupFiles {
    const char* limit;
    const char* used;
    const char* source;
  };
  for (const CgroupFiles& files :
       {CgroupFiles{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
                    "memory.max less memory.current of this cgroup"},
        CgroupFiles{"/sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                    "memory.limit_in_bytes less memory.usage_in_bytes of this cgroup"}}) {
    const std::optional<int64_t> limit = CgroupValue(files.limit);
    if (!limit) continue;
    const int64_t used = CgroupValue(files.used).value_or(0);
    const int64_t left = std::max<int64_t>(0, *limit - used);
    if (!host || left < host->bytes) host = HostMemory{.bytes = left, .source = files.source};
    break;
  }
  return host;
}

absl::Status CheckModelFitsHostMemory(const RunSpec& spec, ModelUse use, const std::string& what) {
  const std::string& device = spec.train().device();
  if (use == ModelUse::kTraining && device == "cuda") return absl::OkStatus();
  PT_ASSIGN_OR_RETURN(const std::optional<HostMemory> host, AvailableHostMemory());
  if (!host) return absl::OkStatus();  // nothing to compare with: the allocator decides
  PT_ASSIGN_OR_RETURN(const RankModelMemory need, HeaviestRankMemory(spec, use));
  if (need.bytes <= host->bytes) return absl::OkStatus();
  const bool training = use == ModelUse::kTraining;
  const std::string dtype = training ? spec.train().dtype() : "f32";
  const std::string rank = training ? absl::StrCat(" on pipeline rank ", need.rank, " (layers ",
                                                   need.first_layer, "-", need.last_layer - 1, ", ")
                                    : absl::StrCat(" (all ", need.last_layer, " layers, ");
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " needs ", GiB(need.bytes), " GiB of host memory", rank, Grouped(need.parameters),
      " parameters: ", dtype, " weights, gradients", training ? " and AdamW moments" : "",
      "), but ", GiB(host->bytes), " GiB are available (", host->source,
      "); lower model.vocab_size, model.d_model, model.ffn_dim or the layer counts",
      training ? ", or spread the layers over more pipeline stages (train.pipeline.stages)" : "",
      host->source == "PIPETRAIN_HOST_MEMORY_GIB" ? ", or raise PIPETRAIN_HOST_MEMORY_GIB" : ""));
}

}  // namespace pipetrain
