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
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"
#include "google/protobuf/text_format.h"

namespace pipetrain {

// Data files are the tensors' memory as it is; the format says little-endian.
static_assert(std::endian::native == std::endian::little,
              "checkpoint data files are little-endian; add byte swapping for this host");

namespace {

namespace fs = std::filesystem;

constexpr char kLatest[] = "latest";
constexpr char kManifest[] = "manifest.pb";
constexpr char kManifestText[] = "manifest.txt";
constexpr char kDataSuffix[] = ".bin";
constexpr char kRecordSuffix[] = ".record";
constexpr char kTmpSuffix[] = ".tmp";
constexpr char kDeletingSuffix[] = ".deleting";
constexpr int64_t kAlignment = 64;
constexpr size_t kMaxListedProblems = 20;
constexpr TensorRole kRoles[] = {PARAM, ADAM_M, ADAM_V};

std::function<absl::Status(const std::string&)>& FaultHook() {
  static auto* hook = new std::function<absl::Status(const std::string&)>();
  return *hook;
}

absl::Status AtFaultPoint(const std::string& point) {
  const auto& hook = FaultHook();
  return hook ? hook(point) : absl::OkStatus();
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

std::string TmpDirOf(const std::string& run_dir, int64_t step) {
  return JoinPath(run_dir, CheckpointStepDirName(step) + kTmpSuffix);
}

// N for "step_<N>", else -1.
int64_t ParseStepDirName(const std::string& name) {
  absl::string_view rest(name);
  if (!absl::ConsumePrefix(&rest, "step_") || rest.empty()) return -1;
  if (!std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  int64_t step = -1;
  return absl::SimpleAtoi(rest, &step) ? step : -1;
}

// Names become file names: no separators, no leading dot, nothing a shell quotes.
bool IsSafeName(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool HasSuffix(const std::string& s, absl::string_view suffix) {
  return absl::EndsWith(absl::string_view(s), suffix);
}

std::string ShapeOf(const CheckpointTensor& t) {
  return ShapeString(Shape(t.shape().begin(), t.shape().end()));
}

std::string Describe(const CheckpointTensor& t) {
  return absl::StrCat(t.name(), " (", TensorRoleLabel(t.role()), ")");
}

absl::StatusOr<DType> DTypeFromName(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f64") return DType::kF64;
  return absl::DataLossError(absl::StrCat("unknown dtype '", name, "' (expected f32 or f64)"));
}

std::string ListProblems(const std::vector<std::string>& problems) {
  std::vector<std::string> shown(problems.begin(),
                                 problems.begin() + std::min(problems.size(), kMaxListedProblems));
  std::string text = absl::StrJoin(shown, "\n  ");
  if (problems.size() > shown.size()) {
    absl::StrAppend(&text, "\n  ... and ", problems.size() - shown.size(), " more");
  }
  return text;
}

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
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

absl::StatusOr<std::string> ReadLatest(const std::string& run_dir) {
  const std::string path = JoinPath(run_dir, kLatest);
  PT_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  const std::string name(absl::StripAsciiWhitespace(text));
  if (ParseStepDirName(name) < 0) {
    return absl::DataLossError(
        absl::StrCat(path, " holds '", name, "', not the name of a step directory (step_<N>)"));
  }
  return name;
}

absl::Status ValidateBlock(const NamedBlock& block) {
  PT_CHECK_ARG(IsSafeName(block.name), "checkpoint: parameter name '", block.name,
               "' is empty or has characters other than letters, digits, '_', '.', '-'");
  const Tensor& p = block.param;
  PT_CHECK_ARG(p.defined(), "checkpoint: parameter ", block.name, " has no tensor");
  PT_CHECK_ARG(p.device() == Device::kCpu, "checkpoint: parameter ", block.name,
               " is on the GPU; copy it to the host first");
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
      const Tensor& t = *tensors[r];
      if (!t.defined()) continue;
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

// Reads `bytes` bytes at `offset` of an open file.
absl::Status PreadFully(int fd, void* into, size_t bytes, int64_t offset) {
  auto* p = static_cast<char*>(into);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", errno);
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("the file ends before byte ", offset + 1, ": it is truncated"));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
    offset += n;
  }
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
  std::vector<NamedBlock> blocks;
  for (const ParameterInfo& info : store.infos()) {
    if (!include_embedding && info.name == "embed.weight") continue;
    NamedBlock block;
    block.name = info.name;
    block.param = store.flat_params().View(info.offset, info.shape);
    if (adam_m.defined()) {
      block.adam_m = adam_m.Reshape({adam_m.numel()}).View(info.offset, info.shape);
      block.adam_v = adam_v.Reshape({adam_v.numel()}).View(info.offset, info.shape);
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
  std::string binary, text;
  if (!manifest.SerializeToString(&binary) ||
      !google::protobuf::TextFormat::PrintToString(manifest, &text)) {
    return absl::InternalError(absl::StrCat("cannot serialise the manifest of ", tmp));
  }
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

absl::StatusOr<CheckpointReader> CheckpointReader::Open(const std::string& path) {
  std::error_code ec;
  std::string dir;
  std::string expected_name;  // the step directory's name when it says the step
  if (fs::exists(JoinPath(path, kManifest), ec)) {
    dir = path;
    expected_name = fs::path(path).lexically_normal().filename().string();
    if (expected_name.empty()) expected_name = fs::path(path).parent_path().filename().string();
  } else if (fs::exists(JoinPath(path, kLatest), ec)) {
    PT_ASSIGN_OR_RETURN(expected_name, ReadLatest(path));
    dir = JoinPath(path, expected_name);
    if (!fs::exists(JoinPath(dir, kManifest), ec)) {
      return absl::DataLossError(absl::StrCat(JoinPath(path, kLatest), " names ", expected_name,
                                              ", but ", JoinPath(dir, kManifest),
                                              " does not exist"));
    }
  } else if (fs::exists(path, ec) && !fs::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint ", path, " is a file; give a run directory or a step_<N> directory"));
  } else if (fs::is_directory(path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        path,
        " has neither manifest.pb (a checkpoint step directory) nor latest (a run "
        "directory); a step_<N>.tmp directory is an interrupted save and cannot be read"));
  } else {
    return absl::NotFoundError(absl::StrCat("checkpoint ", path, " does not exist"));
  }

  if (HasSuffix(expected_name, kTmpSuffix)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is an interrupted save (", kTmpSuffix,
                     "), not a checkpoint; open the run "
                     "directory to get its latest complete checkpoint"));
  }
  CheckpointReader reader;
  reader.dir_ = dir;
  const std::string manifest_path = JoinPath(dir, kManifest);
  PT_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(manifest_path));
  CheckpointManifest& m = reader.manifest_;
  if (!m.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(manifest_path, " cannot be parsed: it is damaged"));
  }
  if (m.format_version() <= 0) {
    return absl::DataLossError(absl::StrCat(manifest_path, " has no format version"));
  }
  if (m.format_version() > kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(manifest_path, " is format ", m.format_version(),
                     "; this pipetrain reads up "
                     "to format ",
                     kCheckpointFormatVersion, " (use a newer pipetrain)"));
  }
  const int64_t dir_step = ParseStepDirName(expected_name);
  if (dir_step >= 0 && dir_step != m.step()) {
    return absl::DataLossError(absl::StrCat(manifest_path, " says step ", m.step(),
                                            " in a directory named ", expected_name));
  }
  std::vector<std::string> problems;
  for (int i = 0; i < m.files_size(); ++i) {
    if (!IsSafeName(m.files(i).name()) || !reader.files_.emplace(m.files(i).name(), i).second) {
      problems.push_back(
          absl::StrCat("file entry '", m.files(i).name(), "' is invalid or repeated"));
    }
  }
  for (int i = 0; i < m.tensors_size(); ++i) {
    const CheckpointTensor& t = m.tensors(i);
    const auto file = reader.files_.find(t.file());
    auto dtype = DTypeFromName(t.dtype());
    const bool shape_ok =
        std::all_of(t.shape().begin(), t.shape().end(), [](int64_t d) { return d >= 0; });
    if (t.role() != PARAM && t.role() != ADAM_M && t.role() != ADAM_V) {
      problems.push_back(absl::StrCat(t.name(), ": unknown role ", static_cast<int>(t.role())));
    } else if (file == reader.files_.end()) {
      problems.push_back(absl::StrCat(Describe(t), ": file ", t.file(), " is not in the manifest"));
    } else if (!dtype.ok() || !shape_ok ||
               t.bytes() != NumElements(Shape(t.shape().begin(), t.shape().end())) *
                                static_cast<int64_t>(DTypeSize(*dtype))) {
      problems.push_back(absl::StrCat(t.file(), ": ", Describe(t), " has an invalid dtype, shape ",
                                      ShapeOf(t), " or size ", t.bytes()));
    } else if (t.offset() < 0 || t.offset() + t.bytes() > m.files(file->second).size()) {
      problems.push_back(absl::StrCat(t.file(), ": ", Describe(t), " at bytes [", t.offset(), ", ",
                                      t.offset() + t.bytes(), ") lies outside the file's ",
                                      m.files(file->second).size(), " bytes"));
    } else if (!reader.index_.emplace(std::make_pair(t.name(), static_cast<int>(t.role())), i)
                    .second) {
      problems.push_back(absl::StrCat(Describe(t), " is listed twice"));
    }
  }
  if (!problems.empty()) {
    return absl::DataLossError(
        absl::StrCat(manifest_path, " is inconsistent:\n  ", ListProblems(problems)));
  }
  return reader;
}

const CheckpointTensor* CheckpointReader::Find(const std::string& name, TensorRole role) const {
  const auto it = index_.find({name, static_cast<int>(role)});
  return it == index_.end() ? nullptr : &manifest_.tensors(it->second);
}

bool CheckpointReader::has_optimizer_state() const {
  return std::any_of(manifest_.tensors().begin(), manifest_.tensors().end(),
                     [](const CheckpointTensor& t) { return t.role() != PARAM; });
}

absl::Status CheckpointReader::VerifyFile(const std::string& file) const {
  const auto it = files_.find(file);
  if (it == files_.end()) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", dir_, " lists no file ", file));
  }
  const CheckpointFile& entry = manifest_.files(it->second);
  const std::string path = JoinPath(dir_, file);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::DataLossError(absl::StrCat(
        path, ": ", std::strerror(err), " (the manifest lists it with ", entry.size(), " bytes)"));
  }
  std::unique_ptr<char[]> buffer(new char[1 << 20]);
  uint32_t crc = 0;
  int64_t size = 0;
  while (true) {
    const ssize_t n = ::read(fd, buffer.get(), 1 << 20);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(absl::StrCat("cannot read ", path), err);
    }
    crc = Crc32cExtend(crc, buffer.get(), static_cast<size_t>(n));
    size += n;
  }
  ::close(fd);
  if (size != entry.size()) {
    return absl::DataLossError(absl::StrCat(path, " is ", size, " bytes, the manifest says ",
                                            entry.size(), ": the file is truncated or replaced"));
  }
  if (crc != entry.crc32c()) {
    return absl::DataLossError(absl::StrCat(path, " has CRC-32C ", Crc32cHex(crc),
                                            ", the manifest says ", Crc32cHex(entry.crc32c()),
                                            ": the file is corrupted"));
  }
  verified_files_.insert(file);
  return absl::OkStatus();
}

absl::Status CheckpointReader::Read(const std::string& name, TensorRole role, Tensor* into) const {
  const CheckpointTensor* entry = Find(name, role);
  if (entry == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", dir_, " has no ", TensorRoleLabel(role), " tensor ", name));
  }
  if (!verified_files_.count(entry->file())) {
    const absl::Status status = VerifyFile(entry->file());
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("reading ", Describe(*entry), ": ", status.message()));
    }
  }
  return ReadTensor(*entry, into);
}

absl::Status CheckpointReader::ReadTensor(const CheckpointTensor& entry, Tensor* into) const {
  const std::string path = JoinPath(dir_, entry.file());
  const std::string where = absl::StrCat(path, ": tensor ", Describe(entry), ": ");
  const Shape shape(entry.shape().begin(), entry.shape().end());
  auto stored = DTypeFromName(entry.dtype());
  if (!stored.ok()) return absl::DataLossError(absl::StrCat(where, stored.status().message()));
  if (into->defined()) {
    PT_CHECK_ARG(into->device() == Device::kCpu, where, "the destination is not on the CPU");
    PT_CHECK_ARG(into->dtype() == DType::kF32 || into->dtype() == DType::kF64, where,
                 "the destination is ", DTypeName(into->dtype()), ", not f32 or f64");
    PT_CHECK_ARG(into->shape() == shape, where, "the checkpoint has shape ", ShapeString(shape),
                 ", the destination ", ShapeString(into->shape()));
  } else {
    *into = Tensor::Empty(shape, *stored);
  }
  // Straight into the destination when the dtypes agree, else via a buffer.
  const bool direct = into->dtype() == *stored;
  Tensor raw = direct ? *into : Tensor::Empty(shape, *stored);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::DataLossError(absl::StrCat(where, std::strerror(err)));
  }
  const absl::Status read =
      PreadFully(fd, raw.raw_data(), static_cast<size_t>(entry.bytes()), entry.offset());
  ::close(fd);
  if (!read.ok()) return absl::Status(read.code(), absl::StrCat(where, read.message()));
  const uint32_t crc = Crc32c(raw.raw_data(), raw.nbytes());
  if (crc != entry.crc32c()) {
    return absl::DataLossError(absl::StrCat(where, "CRC-32C ", Crc32cHex(crc),
                                            ", the manifest says ", Crc32cHex(entry.crc32c()),
                                            ": its bytes are corrupted"));
  }
  if (!direct) {
    for (int64_t i = 0; i < raw.numel(); ++i) {
      const double v = raw.At(i);
      if (into->dtype() == DType::kF32) {
        into->data<float>()[i] = static_cast<float>(v);
      } else {
        into->data<double>()[i] = v;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status LoadParameterStore(const CheckpointReader& reader, ParameterStore* store,
                                Tensor* adam_m, Tensor* adam_v) {
  PT_CHECK_ARG(store != nullptr && store->finalized(),
               "checkpoint: load needs a finalized parameter store");
  std::vector<TensorRole> roles = {PARAM};
  std::vector<Tensor*> flats = {&store->flat_params()};
  for (auto [role, flat] : {std::pair{ADAM_M, adam_m}, std::pair{ADAM_V, adam_v}}) {
    if (flat == nullptr) continue;
    PT_CHECK_ARG(flat->defined() && flat->numel() == store->total_elements() &&
                     flat->device() == Device::kCpu,
                 "checkpoint: the ", TensorRoleLabel(role), " buffer must be a CPU tensor of ",
                 store->total_elements(), " elements");
    roles.push_back(role);
    flats.push_back(flat);
  }
  if (roles.size() > 1 && !reader.has_optimizer_state()) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", reader.step_dir(),
                     " holds no optimizer state (written for inference only); it cannot resume "
                     "training"));
  }
  std::vector<std::string> problems;
  for (const ParameterInfo& info : store->infos()) {
    for (TensorRole role : roles) {
      const CheckpointTensor* entry = reader.Find(info.name, role);
      if (entry == nullptr) {
        problems.push_back(absl::StrCat("missing ", info.name, " (", TensorRoleLabel(role), ")"));
      } else if (Shape(entry->shape().begin(), entry->shape().end()) != info.shape) {
        problems.push_back(absl::StrCat(info.name, " (", TensorRoleLabel(role), "): shape ",
                                        ShapeOf(*entry), " in the checkpoint, ",
                                        ShapeString(info.shape), " in the model"));
      }
    }
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint ", reader.step_dir(), " does not fit this model (", problems.size(),
        " problems; was it written from another spec?):\n  ", ListProblems(problems)));
  }
  for (const ParameterInfo& info : store->infos()) {
    for (size_t r = 0; r < roles.size(); ++r) {
      Tensor view = flats[r]->Reshape({flats[r]->numel()}).View(info.offset, info.shape);
      PT_RETURN_IF_ERROR(reader.Read(info.name, roles[r], &view));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<VerifySummary> VerifyCheckpoint(const CheckpointReader& reader) {
  const CheckpointManifest& m = reader.manifest();
  VerifySummary summary;
  std::vector<std::string> problems;
  std::set<std::string> damaged;
  for (const CheckpointFile& file : m.files()) {
    const absl::Status status = reader.VerifyFile(file.name());
    if (!status.ok()) {
      problems.push_back(std::string(status.message()));
      damaged.insert(file.name());
    }
    ++summary.files;
    summary.bytes += file.size();
  }
  std::set<std::string> names_with[4];
  std::set<std::string> damage_located;
  for (const CheckpointTensor& t : m.tensors()) {
    ++summary.tensors;
    names_with[t.role()].insert(t.name());
    Tensor values;
    // Tensor by tensor even in a damaged file: the tensor CRCs say which were hit.
    const absl::Status status = reader.ReadTensor(t, &values);
    if (!status.ok()) {
      problems.push_back(std::string(status.message()));
      damage_located.insert(t.file());
      continue;
    }
    int64_t non_finite = 0, negative = 0, first_bad = -1;
    const bool second_moment = t.role() == ADAM_V;
    auto scan = [&](const auto* data) {
      for (int64_t i = 0; i < values.numel(); ++i) {
        const bool bad_value = !std::isfinite(data[i]);
        const bool bad_sign = second_moment && data[i] < 0;
        non_finite += bad_value;
        negative += bad_sign;
        if ((bad_value || bad_sign) && first_bad < 0) first_bad = i;
      }
    };
    if (values.dtype() == DType::kF32) {
      scan(values.data<float>());
    } else {
      scan(values.data<double>());
    }
    if (non_finite > 0) {
      problems.push_back(absl::StrCat(JoinPath(reader.step_dir(), t.file()), ": tensor ",
                                      Describe(t), " has ", non_finite,
                                      " non-finite values (first at element ", first_bad, ")"));
    }
    if (negative > 0) {
      problems.push_back(
          absl::StrCat(JoinPath(reader.step_dir(), t.file()), ": tensor ", Describe(t), " has ",
                       negative, " negative second moments (first at element ", first_bad, ")"));
    }
  }
  for (const std::string& file : damaged) {
    if (!damage_located.count(file)) {
      problems.push_back(absl::StrCat(JoinPath(reader.step_dir(), file),
                                      ": every tensor is intact; the damage is in the padding"));
    }
  }
  if (!names_with[ADAM_M].empty() || !names_with[ADAM_V].empty()) {
    for (const std::string& name : names_with[PARAM]) {
      for (TensorRole role : {ADAM_M, ADAM_V}) {
        if (!names_with[role].count(name)) {
          problems.push_back(absl::StrCat(name, " has no ", TensorRoleLabel(role),
                                          " while other parameters have one"));
        }
      }
    }
  }
  if (!problems.empty()) {
    return absl::DataLossError(absl::StrCat("checkpoint ", reader.step_dir(), " failed ",
                                            problems.size(), " checks:\n  ",
                                            ListProblems(problems)));
  }
  return summary;
}

}  // namespace pipetrain
