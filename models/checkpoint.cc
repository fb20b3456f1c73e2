#include "models/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/device.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"
#include "google/protobuf/text_format.h"
#include "models/checkpoint_layout.h"

namespace pipetrain {

// Data files are the tensors' memory as it is; the format says little-endian.
static_assert(std::endian::native == std::endian::little,
              "checkpoint data files are little-endian; add byte swapping for this host");

namespace {

namespace fs = std::filesystem;
using namespace checkpoint_layout;  // NOLINT: the file names and helpers both sides share

constexpr char kDataSuffix[] = ".bin";
constexpr char kRecordSuffix[] = ".record";
constexpr char kDeletingSuffix[] = ".deleting";
constexpr int64_t kAlignment = 64;
constexpr TensorRole kRoles[] = {PARAM, ADAM_M, ADAM_V};

std::function<absl::Status(const std::string&)>& FaultHook() {
  static auto* hook = new std::function<absl::Status(const std::string&)>();
  return *hook;
}

absl::Status AtFaultPoint(const std::string& point) {
  const auto& hook = FaultHook();
  return hook ? hook(point) : absl::OkStatus();
}

std::string TmpDirOf(const std::string& run_dir, int64_t step) {
  return JoinPath(run_dir, CheckpointStepDirName(step) + kTmpSuffix);
}

// Removes a directory tree so that a crash half-way never leaves something
// that looks like a checkpoint: it is first renamed out of the step_<N>
// namespace.
absl::Status RemoveStepDir(const std::string& dir) {
  std::error_code ec;
  const std::string doomed = dir + kDeletingSuffix;
  fs::remove_all(doomed, ec);
  PT_RETURN_IF_ERROR(RenameDurably(dir, doomed));
  fs::remove_all(doomed, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", doomed, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status ValidateBlock(const NamedBlock& block) {
  PT_CHECK_ARG(IsSafeName(block.name), "checkpoint: parameter name '", block.name,
               "' is empty or has characters other than letters, digits, '_', '.', '-'");
  const Tensor& p = block.param;
  PT_CHECK_ARG(p.defined(), "checkpoint: parameter ", block.name, " has no tensor");
  PT_CHECK_ARG(p.device() == Device::kCpu, "checkpoint: parameter ", block.name, " is on the ",
               DeviceName(p.device()), " device; copy it to the host first (BlocksOfStore does)");
  PT_CHECK_ARG(p.dtype() == DType::kF32 || p.dtype() == DType::kF64, "checkpoint: parameter ",
               block.name, " is ", DTypeName(p.dtype()), "; checkpoints hold f32 or f64");
  PT_CHECK_ARG(block.adam_m.defined() == block.adam_v.defined(), "checkpoint: parameter ",
               block.name, " has one AdamW moment but not the other");
  for (const Tensor* moment : {&block.adam_m, &block.adam_v}) {
    if (!moment->defined()) continue;
    PT_CHECK_ARG(moment->shape() == p.shape() && moment->dtype() == p.dtype() &&
                     moment->device() == Device::kCpu,
                 "checkpoint: the AdamW moment of ", block.name, " is ", moment->DebugString(),
                 ", the parameter ", p.DebugString());
  }
  return absl::OkStatus();
}

// Writes one group's data file and then its record (whose presence says the
// data file is complete).
absl::Status WriteGroupFile(const std::string& dir, const std::string& group,
                            const std::vector<const NamedBlock*>& blocks) {
  const std::string file = group + kDataSuffix;
  const std::string path = JoinPath(dir, file);
  auto created = DurableFileWriter::Create(path, /*exclusive=*/true);
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError(absl::StrCat(
        "checkpoint: ", path,
        " was already written by another writer; every layer group (the tied embedding "
        "included) must have exactly one writer"));
  }
  PT_RETURN_IF_ERROR(created.status());
  DurableFileWriter writer = std::move(created).value();
  CheckpointFileRecord record;
  for (const NamedBlock* block : blocks) {
    const Tensor* tensors[] = {&block->param, &block->adam_m, &block->adam_v};
    for (int r = 0; r < 3; ++r) {
      if (!tensors[r]->defined()) continue;
      // A GPU model's tensors are written from a host copy.
      const Tensor t =
          tensors[r]->device() == Device::kCpu ? *tensors[r] : tensors[r]->CopyTo(Device::kCpu);
      const int64_t pad =
          (kAlignment - static_cast<int64_t>(writer.size()) % kAlignment) % kAlignment;
      PT_RETURN_IF_ERROR(writer.AppendZeros(static_cast<size_t>(pad)));
      CheckpointTensor* entry = record.add_tensors();
      entry->set_name(block->name);
      entry->set_role(kRoles[r]);
      for (int64_t d : t.shape()) entry->add_shape(d);
      entry->set_dtype(DTypeName(t.dtype()));
      entry->set_file(file);
      entry->set_offset(static_cast<int64_t>(writer.size()));
      entry->set_bytes(static_cast<int64_t>(t.nbytes()));
      entry->set_crc32c(Crc32c(t.raw_data(), t.nbytes()));
      PT_RETURN_IF_ERROR(writer.Append(t.raw_data(), t.nbytes()));
    }
  }
  record.mutable_file()->set_name(file);
  record.mutable_file()->set_size(static_cast<int64_t>(writer.size()));
  record.mutable_file()->set_crc32c(writer.crc32c());
  PT_RETURN_IF_ERROR(writer.Finish());
  std::string bytes;
  if (!record.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("cannot serialise the record of ", path));
  }
  PT_RETURN_IF_ERROR(WriteFileDurably(path + kRecordSuffix, bytes));
  return AtFaultPoint("file:" + group);
}

// Deletes complete steps older than the `keep_last` newest (`current`
// included), and what interrupted saves and deletions left behind. Steps
// newer than `current` (an abandoned continuation the run was rolled back
// from) are left for the user to judge.
absl::Status Prune(const std::string& run_dir, int keep_last, int64_t current) {
  std::error_code ec;
  std::vector<std::pair<int64_t, std::string>> older;
  std::vector<std::string> leftovers;
  for (const fs::directory_entry& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec)) continue;
    if (HasSuffix(name, kDeletingSuffix) ||
        (HasSuffix(name, kTmpSuffix) &&
         ParseStepDirName(name.substr(0, name.size() - std::strlen(kTmpSuffix))) >= 0)) {
      leftovers.push_back(entry.path().string());
      continue;
    }
    const int64_t step = ParseStepDirName(name);
    if (step >= 0 && step < current) older.emplace_back(step, entry.path().string());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", run_dir, ": ", ec.message()));
  for (const std::string& path : leftovers) fs::remove_all(path, ec);
  if (keep_last <= 0) return absl::OkStatus();
  std::sort(older.rbegin(), older.rend());
  for (size_t i = static_cast<size_t>(keep_last - 1); i < older.size(); ++i) {
    PT_RETURN_IF_ERROR(RemoveStepDir(older[i].second));
  }
  return absl::OkStatus();
}

// Checks the writers' records against each other and the spec, and turns
// them into the manifest's file and tensor lists.
absl::Status AssembleManifest(const std::string& tmp, const CheckpointInfo& info,
                              CheckpointManifest* manifest) {
  std::error_code ec;
  std::set<std::string> data_files;
  std::vector<std::string> record_files;
  for (const fs::directory_entry& entry : fs::directory_iterator(tmp, ec)) {
    const std::string name = entry.path().filename().string();
    if (HasSuffix(name, kDataSuffix)) data_files.insert(name);
    if (HasSuffix(name, std::string(kDataSuffix) + kRecordSuffix)) record_files.push_back(name);
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", tmp, ": ", ec.message()));
  std::sort(record_files.begin(), record_files.end());

  std::vector<std::string> problems;
  std::map<std::pair<std::string, int>, std::string> seen;  // (name, role) -> file
  std::set<std::string> recorded;
  for (const std::string& record_name : record_files) {
    PT_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(JoinPath(tmp, record_name)));
    CheckpointFileRecord record;
    if (!record.ParseFromString(bytes)) {
      problems.push_back(absl::StrCat(record_name, " cannot be parsed"));
      continue;
    }
    const std::string& file = record.file().name();
    if (file + kRecordSuffix != record_name) {
      problems.push_back(absl::StrCat(record_name, " describes ", file));
      continue;
    }
    const auto size = fs::file_size(JoinPath(tmp, file), ec);
    if (ec || static_cast<int64_t>(size) != record.file().size()) {
      problems.push_back(absl::StrCat(file, " is ",
                                      ec ? ec.message() : absl::StrCat(size, " bytes"),
                                      "; its writer recorded ", record.file().size(), " bytes"));
      continue;
    }
    recorded.insert(file);
    *manifest->add_files() = record.file();
    for (const CheckpointTensor& t : record.tensors()) {
      auto [it, fresh] = seen.emplace(std::make_pair(t.name(), static_cast<int>(t.role())), file);
      if (!fresh) {
        problems.push_back(
            absl::StrCat(Describe(t), " was written twice: in ", it->second, " and in ", file));
        continue;
      }
      *manifest->add_tensors() = t;
    }
  }
  for (const std::string& file : data_files) {
    if (!recorded.count(file)) {
      problems.push_back(absl::StrCat(file, " has no record: its writer did not finish"));
    }
  }
  // Every layer must be there: a rank that forgot its files would otherwise
  // produce a checkpoint that only fails when someone loads it.
  const ModelSpec& model = info.spec.model();
  std::vector<std::string> required;
  if (model.encoder_layers() + model.decoder_layers() > 0) required.push_back("embed");
  for (int i = 0; i < model.encoder_layers(); ++i) required.push_back(absl::StrCat("encoder.", i));
  for (int i = 0; i < model.decoder_layers(); ++i) required.push_back(absl::StrCat("decoder.", i));
  for (const std::string& group : required) {
    if (!recorded.count(group + kDataSuffix)) {
      problems.push_back(absl::StrCat("no file for layer group ", group,
                                      " (the spec has it; did every rank write its layers?)"));
    }
  }
  // Optimizer state for every parameter or for none.
  const bool any_moments = std::any_of(
      seen.begin(), seen.end(), [](const auto& entry) { return entry.first.second != PARAM; });
  if (any_moments) {
    for (const auto& [key, file] : seen) {
      if (key.second != PARAM) continue;
      for (TensorRole role : {ADAM_M, ADAM_V}) {
        if (!seen.count({key.first, role})) {
          problems.push_back(absl::StrCat(file, ": ", key.first, " has no ", TensorRoleLabel(role),
                                          " while other parameters have one"));
        }
      }
    }
  }
  if (!problems.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", tmp, " cannot be finalized:\n  ", ListProblems(problems)));
  }
  std::sort(manifest->mutable_files()->begin(), manifest->mutable_files()->end(),
            [](const CheckpointFile& a, const CheckpointFile& b) { return a.name() < b.name(); });
  std::sort(manifest->mutable_tensors()->begin(), manifest->mutable_tensors()->end(),
            [](const CheckpointTensor& a, const CheckpointTensor& b) {
              return std::make_pair(a.name(), static_cast<int>(a.role())) <
                     std::make_pair(b.name(), static_cast<int>(b.role()));
            });
  return absl::OkStatus();
}

}  // namespace

const char* TensorRoleLabel(TensorRole role) {
  switch (role) {
    case PARAM:
      return "param";
    case ADAM_M:
      return "adam_m";
    case ADAM_V:
      return "adam_v";
    default:
      return "unspecified";
  }
}

std::string CheckpointGroupOf(const std::string& parameter_name) {
  const size_t first_dot = parameter_name.find('.');
  if (first_dot == std::string::npos) return parameter_name;
  const std::string head = parameter_name.substr(0, first_dot);
  if (head == "encoder" || head == "decoder") {
    const size_t second_dot = parameter_name.find('.', first_dot + 1);
    return parameter_name.substr(0, second_dot);
  }
  return head;
}

std::string CheckpointStepDirName(int64_t step) { return absl::StrCat("step_", step); }

absl::StatusOr<std::vector<NamedBlock>> BlocksOfStore(const ParameterStore& store,
                                                      const Tensor& adam_m, const Tensor& adam_v,
                                                      bool include_embedding) {
  PT_CHECK_ARG(store.finalized(), "checkpoint: the parameter store is not finalized");
  PT_CHECK_ARG(adam_m.defined() == adam_v.defined(),
               "checkpoint: give both AdamW moments or neither");
  for (const Tensor* moment : {&adam_m, &adam_v}) {
    if (!moment->defined()) continue;
    PT_CHECK_ARG(moment->numel() == store.total_elements() && moment->dtype() == store.dtype(),
                 "checkpoint: AdamW moment ", moment->DebugString(), " does not match the store (",
                 store.total_elements(), " ", DTypeName(store.dtype()), " elements)");
  }
  // A device store (GPU or emulated) is saved through host copies of its
  // flat buffers: one copy each, whatever the number of parameters.
  auto on_host = [](const Tensor& flat) -> absl::StatusOr<Tensor> {
    if (!flat.defined() || flat.device() == Device::kCpu) return flat;
    return CopyToDevice(flat.Reshape({flat.numel()}), Device::kCpu);
  };
  PT_ASSIGN_OR_RETURN(const Tensor params, on_host(store.flat_params()));
  PT_ASSIGN_OR_RETURN(const Tensor m, on_host(adam_m));
  PT_ASSIGN_OR_RETURN(const Tensor v, on_host(adam_v));
  std::vector<NamedBlock> blocks;
  for (const ParameterInfo& info : store.infos()) {
    if (!include_embedding && info.name == "embed.weight") continue;
    NamedBlock block;
    block.name = info.name;
    block.param = params.View(info.offset, info.shape);
    if (m.defined()) {
      block.adam_m = m.Reshape({m.numel()}).View(info.offset, info.shape);
      block.adam_v = v.Reshape({v.numel()}).View(info.offset, info.shape);
    }
    blocks.push_back(std::move(block));
  }
  return blocks;
}

void SetCheckpointFaultHookForTesting(std::function<absl::Status(const std::string&)> hook) {
  FaultHook() = std::move(hook);
}

absl::Status BeginCheckpoint(const std::string& run_dir, int64_t step) {
  PT_CHECK_ARG(step >= 0, "checkpoint: step ", step, " is negative");
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create the run directory ", run_dir, ": ", ec.message()));
  }
  if (fs::exists(JoinPath(run_dir, kLatest), ec)) {
    auto latest = ReadLatest(run_dir);
    if (latest.ok() && *latest == CheckpointStepDirName(step)) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint: ", run_dir, "/", *latest,
                                                        " is the latest checkpoint already; a "
                                                        "step is saved once"));
    }
  }
  const std::string tmp = TmpDirOf(run_dir, step);
  fs::remove_all(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot clear ", tmp, ": ", ec.message()));
  fs::create_directory(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  return SyncDirectory(run_dir);
}

absl::Status WriteCheckpointFiles(const std::string& run_dir, int64_t step,
                                  const std::vector<NamedBlock>& blocks) {
  const std::string tmp = TmpDirOf(run_dir, step);
  std::error_code ec;
  if (!fs::is_directory(tmp, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint: ", tmp, " does not exist; BeginCheckpoint must run (once) first"));
  }
  // Groups in order of first appearance, each with its blocks in the given order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const NamedBlock*>> groups;
  std::set<std::string> names;
  for (const NamedBlock& block : blocks) {
    PT_RETURN_IF_ERROR(ValidateBlock(block));
    PT_CHECK_ARG(names.insert(block.name).second, "checkpoint: parameter ", block.name,
                 " is given twice");
    const std::string group = CheckpointGroupOf(block.name);
    auto& members = groups[group];
    if (members.empty()) order.push_back(group);
    members.push_back(&block);
  }
  for (const std::string& group : order) {
    PT_RETURN_IF_ERROR(WriteGroupFile(tmp, group, groups[group]));
  }
  return SyncDirectory(tmp);
}

absl::StatusOr<std::string> FinalizeCheckpoint(const std::string& run_dir,
                                               const CheckpointInfo& info) {
  const std::string tmp = TmpDirOf(run_dir, info.step);
  std::error_code ec;
  if (!fs::is_directory(tmp, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint: ", tmp, " does not exist; nothing to finalize"));
  }
  CheckpointManifest manifest;
  manifest.set_format_version(kCheckpointFormatVersion);
  manifest.set_step(info.step);
  *manifest.mutable_spec() = info.spec;
  manifest.set_data_cursor(info.data_cursor);
  manifest.set_rng_seed(info.rng_seed);
  manifest.set_created_unix_seconds(static_cast<int64_t>(std::time(nullptr)));
  PT_RETURN_IF_ERROR(AssembleManifest(tmp, info, &manifest));

  PT_RETURN_IF_ERROR(AtFaultPoint("manifest"));
  // manifest.txt first, so manifest.pb can hold its CRC; then manifest.pb
  // sealed with the CRC of its own bytes (checkpoint_layout.h): every byte
  // of a checkpoint is covered by some checksum.
  std::string binary, text;
  if (!google::protobuf::TextFormat::PrintToString(manifest, &text)) {
    return absl::InternalError(absl::StrCat("cannot serialise the manifest of ", tmp));
  }
  manifest.set_text_crc32c(Crc32c(text.data(), text.size()));
  if (!manifest.SerializeToString(&binary)) {
    return absl::InternalError(absl::StrCat("cannot serialise the manifest of ", tmp));
  }
  binary = SealManifest(binary);
  PT_RETURN_IF_ERROR(WriteFileDurably(JoinPath(tmp, kManifest), binary));
  PT_RETURN_IF_ERROR(WriteFileDurably(JoinPath(tmp, kManifestText), text));
  for (const CheckpointFile& file : manifest.files()) {
    fs::remove(JoinPath(tmp, file.name() + kRecordSuffix), ec);
  }
  PT_RETURN_IF_ERROR(SyncDirectory(tmp));

  PT_RETURN_IF_ERROR(AtFaultPoint("rename"));
  const std::string name = CheckpointStepDirName(info.step);
  const std::string final_dir = JoinPath(run_dir, name);
  if (fs::exists(final_dir, ec)) {
    // Left by a save that crashed between its rename and `latest`, unless
    // `latest` names it: then this run is saving a step twice.
    auto latest = ReadLatest(run_dir);
    if (latest.ok() && *latest == name) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint: ", final_dir, " is the latest checkpoint already; a step is saved once"));
    }
    PT_RETURN_IF_ERROR(RemoveStepDir(final_dir));
  }
  PT_RETURN_IF_ERROR(RenameDurably(tmp, final_dir));

  PT_RETURN_IF_ERROR(AtFaultPoint("latest"));
  PT_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(run_dir, kLatest), name + "\n"));
  PT_RETURN_IF_ERROR(Prune(run_dir, info.keep_last, info.step));
  return final_dir;
}

absl::StatusOr<std::string> SaveCheckpoint(const std::string& run_dir, const CheckpointInfo& info,
                                           const std::vector<NamedBlock>& blocks) {
  PT_RETURN_IF_ERROR(BeginCheckpoint(run_dir, info.step));
  PT_RETURN_IF_ERROR(WriteCheckpointFiles(run_dir, info.step, blocks));
  return FinalizeCheckpoint(run_dir, info);
}

absl::StatusOr<std::string> SaveParameterStore(const std::string& run_dir,
                                               const CheckpointInfo& info,
                                               const ParameterStore& store, const Tensor& adam_m,
                                               const Tensor& adam_v) {
  PT_ASSIGN_OR_RETURN(const std::vector<NamedBlock> blocks, BlocksOfStore(store, adam_m, adam_v));
  return SaveCheckpoint(run_dir, info, blocks);
}

bool HasCheckpoint(const std::string& run_dir) {
  std::error_code ec;
  return fs::exists(JoinPath(run_dir, kLatest), ec);
}

}  // namespace pipetrain
