// Whether the model a command is about to build fits in this machine's
// memory, decided before a byte of it is allocated. A spec inside the field
// bounds (core/config/spec_bounds.h) can still ask for terabytes (d_model
// 65,536 with a 16M vocabulary); without this check the allocator aborts the
// process, or the kernel kills it, with nothing said about why.
//
// The need is counted with launcher/plan_memory.h (what `pipetrain plan`
// reports), so the two never disagree: a rank's parameters as models/
// registers them, times the buffers kept per parameter. It is a lower bound
// (activations and the data pipeline come on top), so a refusal is certain
// and a pass is no promise.
//
// Called by `train` (train_command.cc, before the trainer starts) and by
// `translate` and `eval` (inference_model.cc, before the checkpoint's model
// is built).
#ifndef PIPETRAIN_LAUNCHER_MODEL_MEMORY_H_
#define PIPETRAIN_LAUNCHER_MODEL_MEMORY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

enum class ModelUse {
  kTraining,   // weights, gradients, two AdamW moments; every pipeline rank its own stage
  kInference,  // weights and gradients (the store keeps both) of the whole model in one process
};

// The memory one rank needs for its model, in bytes.
struct RankModelMemory {
  int rank = 0;            // the pipeline rank (every replica of it needs the same)
  int first_layer = 0;     // the global layers its virtual stages hold, lowest and
  int last_layer = 0;      // highest + 1 (interleaved chunks are not contiguous)
  int64_t parameters = 0;  // parameters its stages allocate
  int64_t bytes = 0;       // the buffers counted for `use`
};

// The heaviest pipeline rank of `spec` (validated, defaults applied) for
// `use`. kInference counts the whole model in f32, as translate and eval
// build it, whatever the spec's placement and dtype.
absl::StatusOr<RankModelMemory> HeaviestRankMemory(const RunSpec& spec, ModelUse use);

// The memory this process may use, in bytes, and where that number came from
// ("MemAvailable in /proc/meminfo", "PIPETRAIN_HOST_MEMORY_GIB", ...):
// PIPETRAIN_HOST_MEMORY_GIB when set (a number of GiB > 0; it replaces the
// detection, for hosts where /proc/meminfo says more than a job may take),
// else the smaller of MemAvailable and the cgroup's limit less its use
// (memory.max − memory.current, or cgroup v1's limit_in_bytes −
// usage_in_bytes). nullopt when nothing could be read (the check is skipped).
struct HostMemory {
  int64_t bytes = 0;
  std::string source;
};
absl::StatusOr<std::optional<HostMemory>> AvailableHostMemory();

// ResourceExhausted when the heaviest rank's model of `spec` needs more than
// the available host memory:
//   "the model needs 16384.0 GiB of host memory on pipeline rank 0 (layers
//   0-3, 1,099,511,627,776 parameters: f32 weights, gradients and AdamW
//   moments), but 21.3 GiB are available (MemAvailable in /proc/meminfo);
//   lower model.vocab_size, model.d_model, model.ffn_dim or the layer counts,
//   or spread the layers over more pipeline stages (train.pipeline.stages)"
// `what` names the model in the message ("the model of runs/x/step_100").
// Only host devices ("cpu", "emulated") are checked: a "cuda" run keeps its
// parameters in GPU memory.
absl::Status CheckModelFitsHostMemory(const RunSpec& spec, ModelUse use,
                                      const std::string& what = "the model");

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_MODEL_MEMORY_H_
