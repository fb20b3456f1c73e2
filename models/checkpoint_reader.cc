// The reading half of models/checkpoint.h: opening a step or run directory,
// reading tensors (checking CRC-32C), loading a ParameterStore by name,
// verifying. The writing half is checkpoint.cc.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/device.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "google/protobuf/text_format.h"
#include "models/checkpoint.h"
#include "models/checkpoint_layout.h"
#include "models/checkpoint_spec.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using namespace checkpoint_layout;  // NOLINT: the file names and helpers both sides share

// A manifest is a few MB even for a 200-layer model; a larger file is not one.
constexpr int64_t kMaxManifestBytes = int64_t{1} << 30;
constexpr char kDamagedAdvice[] =
    "resume from an older checkpoint (open its step_<N> directory) or restore this one from a "
    "copy";

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
  PT_ASSIGN_OR_RETURN(const std::string bytes,
                      ReadCheckpointFile(dir, kManifest, kMaxManifestBytes));
  // The manifest's own CRC is checked on the raw bytes before any field is
  // parsed, let alone trusted (a flipped bit in the data cursor or the norm
  // would otherwise go unnoticed).
  uint32_t sealed_crc = 0, computed_crc = 0;
  const bool sealed = ManifestSeal(bytes, &sealed_crc, &computed_crc);
  if (sealed && sealed_crc != computed_crc) {
    return absl::DataLossError(absl::StrCat(
        manifest_path, " has CRC-32C ", Crc32cHex(computed_crc), ", its last field says ",
        Crc32cHex(sealed_crc),
        ": the manifest is corrupted and none of its fields can be trusted; ", kDamagedAdvice));
  }
  CheckpointManifest& m = reader.manifest_;
  if (!m.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat(manifest_path, " cannot be parsed: it is damaged; ", kDamagedAdvice));
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
  if (m.format_version() >= 2 && !sealed) {
    return absl::DataLossError(absl::StrCat(
        manifest_path, " is format ", m.format_version(),
        " but does not end with its CRC-32C: the manifest is damaged; ", kDamagedAdvice));
  }
  if (m.format_version() == 1) {
    // Written before manifests carried their own checksum: readable, but a
    // damaged field would go unnoticed, so say so every time.
    LogWarning("ckpt",
               "%s is format 1, written before manifests carried their own CRC-32C: its fields "
               "(spec, step, data cursor) cannot be checked. Save a new checkpoint to get one",
               manifest_path);
  } else {
    const std::string text_path = JoinPath(dir, kManifestText);
    const int64_t text_cap = int64_t{16} * static_cast<int64_t>(bytes.size()) + (int64_t{1} << 20);
    auto text = ReadCheckpointFile(dir, kManifestText, text_cap);
    if (!text.ok()) {
      return absl::DataLossError(absl::StrCat(text.status().message(), " (", kManifestText,
                                              " is the manifest as text, covered by its CRC); ",
                                              kDamagedAdvice));
    }
    const uint32_t text_crc = Crc32c(text->data(), text->size());
    if (text_crc != m.text_crc32c()) {
      return absl::DataLossError(absl::StrCat(text_path, " has CRC-32C ", Crc32cHex(text_crc), ", ",
                                              kManifest, " says ", Crc32cHex(m.text_crc32c()),
                                              ": the file is corrupted; ", kDamagedAdvice));
    }
  }
  const int64_t dir_step = ParseStepDirName(expected_name);
  if (dir_step >= 0 && dir_step != m.step()) {
    return absl::DataLossError(absl::StrCat(manifest_path, " says step ", m.step(),
                                            " in a directory named ", expected_name));
  }
  std::vector<std::string> problems;
  for (int i = 0; i < m.files_size(); ++i) {
    const CheckpointFile& f = m.files(i);
    if (!IsSafeName(f.name()) || f.name() == kManifest || f.name() == kManifestText ||
        f.size() < 0 || !reader.files_.emplace(f.name(), i).second) {
      problems.push_back(absl::StrCat("file entry '", f.name(), "' (", f.size(),
                                      " bytes) is invalid or repeated"));
      continue;
    }
    // Refuse a FIFO, a device or a link out of the directory now, before
    // anything waits on it or reads it endlessly. A missing file is left to
    // the reads (verify names it with the rest).
    int64_t real_size = 0;
    auto fd = OpenCheckpointFile(dir, f.name(), &real_size);
    if (fd.ok()) {
      ::close(*fd);
    } else if (!absl::IsNotFound(fd.status())) {
      problems.push_back(std::string(fd.status().message()));
    }
  }
  for (int i = 0; i < m.tensors_size(); ++i) {
    const CheckpointTensor& t = m.tensors(i);
    const auto file = reader.files_.find(t.file());
    auto dtype = DTypeFromName(t.dtype());
    // Every size is checked with overflow-safe arithmetic: the fields are
    // untrusted until they agree with each other.
    int64_t elements = 1, expected_bytes = 0, end = 0;
    bool shape_ok = true;
    for (const int64_t d : t.shape()) shape_ok = shape_ok && CheckedMul(elements, d, &elements);
    const bool bytes_ok =
        shape_ok && dtype.ok() &&
        CheckedMul(elements, static_cast<int64_t>(DTypeSize(*dtype)), &expected_bytes) &&
        expected_bytes == t.bytes();
    if (t.role() != PARAM && t.role() != ADAM_M && t.role() != ADAM_V) {
      problems.push_back(absl::StrCat(t.name(), ": unknown role ", static_cast<int>(t.role())));
    } else if (file == reader.files_.end()) {
      problems.push_back(absl::StrCat(Describe(t), ": file ", t.file(), " is not in the manifest"));
    } else if (!bytes_ok) {
      problems.push_back(absl::StrCat(t.file(), ": ", Describe(t), " has an invalid dtype, shape [",
                                      absl::StrJoin(t.shape(), ","), "] or size ", t.bytes()));
    } else if (t.offset() < 0 || !CheckedAdd(t.offset(), t.bytes(), &end) ||
               end > m.files(file->second).size()) {
      problems.push_back(absl::StrCat(t.file(), ": ", Describe(t), " at offset ", t.offset(),
                                      " with ", t.bytes(), " bytes lies outside the file's ",
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
  int64_t real_size = 0;
  auto opened = OpenCheckpointFile(dir_, file, &real_size);
  if (!opened.ok()) {
    return absl::DataLossError(absl::StrCat(
        opened.status().message(), " (the manifest lists it with ", entry.size(), " bytes)"));
  }
  const int fd = *opened;
  if (real_size != entry.size()) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(path, " is ", real_size, " bytes, the manifest says ",
                                            entry.size(), ": the file is truncated or replaced"));
  }
  // Reads no more than the size checked above, whatever the file does meanwhile.
  constexpr int64_t kChunk = int64_t{1} << 20;
  std::unique_ptr<char[]> buffer(new char[kChunk]);
  uint32_t crc = 0;
  int64_t size = 0;
  while (size < real_size) {
    const ssize_t n =
        ::read(fd, buffer.get(), static_cast<size_t>(std::min(kChunk, real_size - size)));
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
  }
  // The real file must hold the tensor before anything is allocated for it:
  // a crafted manifest cannot ask for more memory than the file has bytes.
  int64_t real_size = 0, end = 0;
  auto opened = OpenCheckpointFile(dir_, entry.file(), &real_size);
  if (!opened.ok()) return absl::DataLossError(absl::StrCat(where, opened.status().message()));
  const int fd = *opened;
  if (entry.offset() < 0 || !CheckedAdd(entry.offset(), entry.bytes(), &end) || end > real_size) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(where, "the file ends before byte ",
                                            std::min(real_size, entry.offset()) + 1,
                                            " of the tensor's bytes: it is truncated"));
  }
  if (!into->defined()) *into = Tensor::Empty(shape, *stored);
  // Straight into the destination when the dtypes agree, else via a buffer.
  const bool direct = into->dtype() == *stored;
  Tensor raw = direct ? *into : Tensor::Empty(shape, *stored);
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

namespace {

// A tensor loaded for training or decoding must be finite: a NaN weight or
// moment (a checkpoint written by a run that diverged before pipetrain
// skipped such steps) would spread through every later step unnoticed.
absl::Status CheckLoadedValuesFinite(const CheckpointReader& reader, const std::string& name,
                                     TensorRole role, const Tensor& host) {
  int64_t non_finite = 0, first = -1;
  auto scan = [&](const auto* data) {
    for (int64_t i = 0; i < host.numel(); ++i) {
      if (std::isfinite(data[i])) continue;
      if (first < 0) first = i;
      ++non_finite;
    }
  };
  if (host.dtype() == DType::kF32) {
    scan(host.data<float>());
  } else {
    scan(host.data<double>());
  }
  if (non_finite == 0) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "checkpoint ", reader.step_dir(), ": tensor ", name, " (", TensorRoleLabel(role), ") has ",
      non_finite, " non-finite values (first at element ", first,
      "); it cannot be loaded. Resume from an older step_<N> directory (`pipetrain ckpt verify` "
      "says which are whole), or start the run over with a lower train.lr"));
}

}  // namespace

absl::Status LoadParameterStore(const CheckpointReader& reader, ParameterStore* store,
                                Tensor* adam_m, Tensor* adam_v) {
  PT_CHECK_ARG(store != nullptr && store->finalized(),
               "checkpoint: load needs a finalized parameter store");
  std::vector<TensorRole> roles = {PARAM};
  std::vector<Tensor*> flats = {&store->flat_params()};
  for (auto [role, flat] : {std::pair{ADAM_M, adam_m}, std::pair{ADAM_V, adam_v}}) {
    if (flat == nullptr) continue;
    PT_CHECK_ARG(flat->defined() && flat->numel() == store->total_elements() &&
                     flat->device() == store->device(),
                 "checkpoint: the ", TensorRoleLabel(role), " buffer must be a ",
                 DeviceName(store->device()), " tensor of ", store->total_elements(),
                 " elements, like the parameters");
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
      if (view.device() == Device::kCpu) {
        PT_RETURN_IF_ERROR(reader.Read(info.name, roles[r], &view));
        PT_RETURN_IF_ERROR(CheckLoadedValuesFinite(reader, info.name, roles[r], view));
      } else {
        // A device model (GPU or emulated) reads into a host tensor, then
        // copies into its storage.
        Tensor host = Tensor::Empty(view.shape(), view.dtype());
        PT_RETURN_IF_ERROR(reader.Read(info.name, roles[r], &host));
        PT_RETURN_IF_ERROR(CheckLoadedValuesFinite(reader, info.name, roles[r], host));
        PT_RETURN_IF_ERROR(CopyTensor(host, view));
      }
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
  // Complete and of the right shapes for the spec it records: a manifest
  // whose tensor entries were deleted has nothing left to fail a CRC.
  for (std::string& problem : CheckpointSpecProblems(
           reader, m.spec().model(),
           absl::StrCat("the spec in ", JoinPath(reader.step_dir(), kManifest)))) {
    problems.push_back(std::move(problem));
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
