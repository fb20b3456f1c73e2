// Checkpoints (DESIGN.md decision 6; docs/checkpoints.md is the user's page).
//
//   RUN_DIR/latest               "step_<N>\n", replaced atomically, last
//   RUN_DIR/step_<N>/<group>.bin one per layer group: "embed", "encoder.<i>",
//                                "decoder.<i>", "encoder.final_ln",
//                                "decoder.final_ln", "output"; each holds its
//                                parameters and their AdamW m and v
//   RUN_DIR/step_<N>/manifest.pb the CheckpointManifest (proto/checkpoint.proto),
//                    manifest.txt and the same as text
//
// Saving is three calls so that pipeline ranks can share it:
//   1. BeginCheckpoint      once (rank 0): clears and creates step_<N>.tmp/;
//      -- the caller's barrier --
//   2. WriteCheckpointFiles on every rank that owns parameters: writes the
//      group files of the blocks it is given, each with a small record file
//      beside it (<group>.bin.record) that says its size, CRC-32C and tensors;
//      -- the caller's barrier --
//   3. FinalizeCheckpoint   once (rank 0): assembles the manifest from the
//      records, renames step_<N>.tmp to step_<N>, points `latest` at it and
//      prunes old steps.
// SaveCheckpoint does all three for one process. A group file is created
// exclusively, so two ranks that both write a group (the tied embedding,
// say) fail loudly instead of tearing the file: give the embedding only from
// the stage holding global layer 0 (BlocksOfStore's `include_embedding`).
//
// Loading is by tensor name: a checkpoint written with p stages loads into
// any other split (LoadParameterStore on each stage's store).
//
// Files and directories are written durably (core/io/atomic_file.h); a crash
// at any point leaves `latest` naming either the previous complete
// checkpoint or the new one.
#ifndef PIPETRAIN_MODELS_CHECKPOINT_H_
#define PIPETRAIN_MODELS_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "models/parameter_store.h"
#include "proto/checkpoint.pb.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// 2: manifest.pb carries the CRC-32C of its own bytes and of manifest.txt.
inline constexpr int kCheckpointFormatVersion = 2;

// One parameter as a checkpoint stores it. Tensors may be views into flat
// buffers; they must be on the CPU, f32 or f64. The moments are both
// undefined for an inference-only checkpoint, or both shaped like `param`.
struct NamedBlock {
  std::string name;
  Tensor param;
  Tensor adam_m, adam_v;
};

// The layer group (data file stem) a parameter belongs to: "encoder.3" for
// "encoder.3.ffn.fc1.bias", "encoder.final_ln" for "encoder.final_ln.gamma",
// "embed" for "embed.weight", "output" for "output.weight".
std::string CheckpointGroupOf(const std::string& parameter_name);

// "step_<N>".
std::string CheckpointStepDirName(int64_t step);

// One block per parameter of `store`, in registration order, as views into
// its flat buffer and into `adam_m` / `adam_v` (flat, the store's layout;
// both undefined for inference-only). A device store (GPU or emulated, its
// moments on the same device) gives views into host copies of the three
// flat buffers instead: three device-to-host copies in all. `include_embedding` false leaves out
// "embed.weight": pipeline stages other than the one holding global layer 0
// hold a copy of the tied embedding that another rank writes.
absl::StatusOr<std::vector<NamedBlock>> BlocksOfStore(const ParameterStore& store,
                                                      const Tensor& adam_m, const Tensor& adam_v,
                                                      bool include_embedding = true);

// What a checkpoint records besides tensors.
struct CheckpointInfo {
  int64_t step = 0;         // updates done
  RunSpec spec;             // resolved
  std::string data_cursor;  // opaque: the data source's position
  uint64_t rng_seed = 0;
  // Complete checkpoints to keep, this one included; older steps are
  // deleted after `latest` moves. 0 keeps every one.
  int keep_last = 0;
};

// 1. Creates RUN_DIR (if needed) and an empty RUN_DIR/step_<N>.tmp/, removing
// what an interrupted attempt left there. Once, before any writer starts.
absl::Status BeginCheckpoint(const std::string& run_dir, int64_t step);

// 2. Writes the group files of `blocks` (and their records) into
// RUN_DIR/step_<N>.tmp/. Every file is fsynced before the call returns. A
// group's blocks must all come in one call (one writer per group).
absl::Status WriteCheckpointFiles(const std::string& run_dir, int64_t step,
                                  const std::vector<NamedBlock>& blocks);

// 3. Checks the records (every encoder and decoder layer of the spec and the
// embedding present, no tensor twice, moments for all parameters or none),
// writes the manifest, renames step_<N>.tmp to step_<N>, replaces `latest`,
// prunes. Returns the step directory.
absl::StatusOr<std::string> FinalizeCheckpoint(const std::string& run_dir,
                                               const CheckpointInfo& info);

// 1-3 in one process.
absl::StatusOr<std::string> SaveCheckpoint(const std::string& run_dir, const CheckpointInfo& info,
                                           const std::vector<NamedBlock>& blocks);

// SaveCheckpoint of a whole model's store and its flat AdamW moments
// (undefined tensors: no optimizer state).
absl::StatusOr<std::string> SaveParameterStore(const std::string& run_dir,
                                               const CheckpointInfo& info,
                                               const ParameterStore& store, const Tensor& adam_m,
                                               const Tensor& adam_v);

// True when RUN_DIR/latest exists: the run has a checkpoint to resume from.
bool HasCheckpoint(const std::string& run_dir);

// For tests of crash safety: called at fixed points of a save with the
// point's name ("file:<group>" after each group file is durable, "manifest"
// before the manifest is written, "rename" before step_<N>.tmp is renamed,
// "latest" before `latest` is replaced). A non-OK return aborts the save
// right there, as a crash would, leaving everything as it is. Null clears it.
void SetCheckpointFaultHookForTesting(std::function<absl::Status(const std::string&)> hook);

class CheckpointReader;
// What VerifyCheckpoint (below) checked.
struct VerifySummary {
  int64_t files = 0;
  int64_t tensors = 0;
  int64_t bytes = 0;
};

// Reads a complete checkpoint. Not thread-safe.
class CheckpointReader {
 public:
  // `path` is a step directory (holds manifest.pb) or a run directory (holds
  // `latest`, which is followed). Checks the manifest's format version and
  // that every tensor lies inside its file; data is checked as it is read.
  static absl::StatusOr<CheckpointReader> Open(const std::string& path);

  const CheckpointManifest& manifest() const { return manifest_; }
  const std::string& step_dir() const { return dir_; }
  int64_t step() const { return manifest_.step(); }
  // The entry, or null when the checkpoint has no such tensor.
  const CheckpointTensor* Find(const std::string& name, TensorRole role) const;
  // Whether the checkpoint holds AdamW moments.
  bool has_optimizer_state() const;

  // Reads one tensor. A defined `into` (a view into a flat buffer, say) must
  // have the stored shape and is filled in place, converting f32 <-> f64 if
  // the dtypes differ; an undefined one gets a new tensor of the stored dtype.
  // The first read from a data file checks its size and CRC-32C.
  absl::Status Read(const std::string& name, TensorRole role, Tensor* into) const;

  // Re-reads one data file (by manifest name) and checks its size and CRC-32C.
  absl::Status VerifyFile(const std::string& file) const;

 private:
  friend absl::StatusOr<VerifySummary> VerifyCheckpoint(const CheckpointReader& reader);
  CheckpointReader() = default;
  // Read without the whole-file check (the tensor's own CRC is still checked).
  absl::Status ReadTensor(const CheckpointTensor& entry, Tensor* into) const;

  std::string dir_;
  CheckpointManifest manifest_;
  std::map<std::pair<std::string, int>, int> index_;  // (name, role) -> tensors(i)
  std::map<std::string, int> files_;                  // name -> files(i)
  mutable std::set<std::string> verified_files_;
};

// Fills every parameter of `store` (a whole model or one pipeline stage) from
// the checkpoint by name, and the flat moments `adam_m` / `adam_v` (the
// store's layout; null to skip them, e.g. for inference). One error lists
// every missing or mis-shaped tensor.
absl::Status LoadParameterStore(const CheckpointReader& reader, ParameterStore* store,
                                Tensor* adam_m, Tensor* adam_v);

// Every check `pipetrain ckpt verify` makes: each file's size and CRC-32C,
// each tensor's CRC-32C (naming the tensors a damaged file lost), values
// finite, second moments non-negative, moments for all parameters or none.
// One error lists every problem, each naming its file and tensor.
absl::StatusOr<VerifySummary> VerifyCheckpoint(const CheckpointReader& reader);

const char* TensorRoleLabel(TensorRole role);  // "param", "adam_m", "adam_v"

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_CHECKPOINT_H_
