#include "launcher/ckpt_command.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/config/spec_loader.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"
#include "models/checkpoint_spec.h"
#include "models/norm_constants.h"

// Defined by `data build` (launcher/data_command.cc): the output path.
ABSL_DECLARE_FLAG(std::string, out);
// Defined by `train` (launcher/train_command.cc): `ckpt verify --spec FILE`.
ABSL_DECLARE_FLAG(std::string, spec);

namespace pipetrain {
namespace {

constexpr char kCkptUsage[] =
    "pipetrain ckpt inspect PATH | verify PATH [--spec FILE] | export PATH --out "
    "FILE.safetensors\n"
    "    PATH: a run directory (its latest checkpoint) or a step_<N> directory";

std::string HumanBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (int64_t{1} << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (int64_t{1} << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

// 1234567 -> "1,234,567".
std::string Grouped(int64_t n) {
  const std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// "decoder.2.x" before "decoder.10.x": runs of digits compare as numbers, so
// a deep model lists its layers in order.
bool NaturalLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (absl::ascii_isdigit(a[i]) && absl::ascii_isdigit(b[j])) {
      const size_t i0 = i, j0 = j;
      while (i < a.size() && absl::ascii_isdigit(a[i])) ++i;
      while (j < b.size() && absl::ascii_isdigit(b[j])) ++j;
      const std::string_view x(a.data() + i0, i - i0), y(b.data() + j0, j - j0);
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

struct NaturalOrder {
  bool operator()(const std::string& a, const std::string& b) const { return NaturalLess(a, b); }
};

std::string ShapeText(const CheckpointTensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.shape(), ","), "]");
}

int64_t Elements(const CheckpointTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape()) n *= d;
  return n;
}

absl::Status Export(const std::string& path) {
  const std::string out = absl::GetFlag(FLAGS_out);
  PT_CHECK_ARG(!out.empty(), "ckpt export needs --out FILE.safetensors\nusage: ", kCkptUsage);
  PT_ASSIGN_OR_RETURN(const CheckpointReader reader, CheckpointReader::Open(path));
  PT_ASSIGN_OR_RETURN(const SafetensorsExport done, ExportSafetensors(reader, out));
  std::printf("wrote %s: %lld tensors, %s parameters (F32, no optimizer state), %s, step %lld\n",
              out.c_str(), static_cast<long long>(done.tensors), Grouped(done.parameters).c_str(),
              HumanBytes(done.bytes).c_str(), static_cast<long long>(reader.step()));
  return absl::OkStatus();
}

// Export writes OUT.tmp and renames it over OUT. Refused: an OUT that is not
// a regular file (a device node would be replaced by a regular file), and an
// OUT inside the step directory being read or naming a file the reader
// reads (the run directory's `latest`, a data file through a hard link):
// the export would destroy the checkpoint it copies.
absl::Status CheckExportTarget(const CheckpointReader& reader, const std::string& out) {
  namespace fs = std::filesystem;
  PT_RETURN_IF_ERROR(CheckReplaceable(out));
  PT_RETURN_IF_ERROR(CheckReplaceable(out + ".tmp"));
  std::error_code ec;
  const fs::path step_dir = fs::weakly_canonical(reader.step_dir(), ec);
  const fs::path out_dir = fs::weakly_canonical(fs::absolute(out, ec).parent_path(), ec);
  const auto refuse = [&]() {
    return absl::InvalidArgumentError(absl::StrCat(
        "--out ", out, " is inside the checkpoint being exported (", reader.step_dir(),
        "): writing it would change the checkpoint while it is read; give a path outside it"));
  };
  const fs::path rel = out_dir.lexically_relative(step_dir);
  if (!rel.empty() && *rel.begin() != "..") return refuse();
  struct stat target {};
  if (::stat(out.c_str(), &target) != 0) return absl::OkStatus();  // a new file
  std::vector<std::string> read_files = {(step_dir.parent_path() / "latest").string()};
  for (const CheckpointFile& f : reader.manifest().files()) {
    read_files.push_back((step_dir / f.name()).string());
  }
  for (const std::string& file : read_files) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && st.st_dev == target.st_dev &&
        st.st_ino == target.st_ino) {
      return absl::InvalidArgumentError(
          absl::StrCat("--out ", out, " is ", file,
                       ", which the export reads: writing it would destroy it; "
                       "give another path"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string DescribeCheckpoint(const CheckpointReader& reader) {
  const CheckpointManifest& m = reader.manifest();
  const ModelSpec& model = m.spec().model();
  const TrainConfig& train = m.spec().train();
  std::string text = absl::StrFormat(
      "checkpoint %s (format %d, written %s)\n", reader.step_dir(), m.format_version(),
      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(m.created_unix_seconds()),
                       absl::UTCTimeZone()));
  absl::StrAppendFormat(&text, "step %d, rng seed %d, data cursor %d bytes\n", m.step(),
                        m.rng_seed(), m.data_cursor().size());
  absl::StrAppendFormat(&text,
                        "model %s: %s, %d+%d layers, d_model %d, ffn %d, heads %d, vocab %d, %s\n",
                        model.name(), ModelKind_Name(model.kind()), model.encoder_layers(),
                        model.decoder_layers(), model.d_model(), model.ffn_dim(), model.heads(),
                        model.vocab_size(), ResidualNorm_Name(model.norm()));
  // The α, β and BranchNorm schedule the layers compute with, so a run's
  // constants can be checked without redoing the formulas.
  absl::StrAppendFormat(&text, "norms: %s\n", DescribeNormConstants(model));
  absl::StrAppendFormat(&text, "train: lr %g (%s), %d tokens per batch, %d steps, dtype %s\n",
                        train.lr(), LrSchedule_Name(train.lr_schedule()), train.tokens_per_batch(),
                        train.steps(), train.dtype());

  // Per parameter: its roles; totals over parameters.
  std::map<std::string, std::vector<const CheckpointTensor*>, NaturalOrder> by_name;
  for (const CheckpointTensor& t : m.tensors()) by_name[t.name()].push_back(&t);
  int64_t parameters = 0, param_bytes = 0;
  std::map<std::string, int64_t> dtypes;
  for (const auto& [name, entries] : by_name) {
    for (const CheckpointTensor* t : entries) {
      if (t->role() != PARAM) continue;
      parameters += Elements(*t);
      param_bytes += t->bytes();
      dtypes[t->dtype()] += 1;
    }
  }
  std::vector<std::string> dtype_list;
  for (const auto& [dtype, count] : dtypes) dtype_list.push_back(dtype);
  absl::StrAppendFormat(&text, "parameters: %s in %d tensors (%s, %s); optimizer state: %s\n",
                        Grouped(parameters), by_name.size(), absl::StrJoin(dtype_list, "+"),
                        HumanBytes(param_bytes),
                        reader.has_optimizer_state() ? "AdamW m and v" : "none (inference only)");

  int64_t total = 0;
  size_t width = 4;
  for (const CheckpointFile& f : m.files()) {
    total += f.size();
    width = std::max(width, f.name().size());
  }
  absl::StrAppendFormat(&text, "files: %d, %s\n", m.files_size(), HumanBytes(total));
  std::map<std::string, int> tensors_in;
  for (const CheckpointTensor& t : m.tensors()) ++tensors_in[t.file()];
  absl::StrAppendFormat(&text, "  %-*s %12s  %-10s  %s\n", width, "file", "bytes", "crc32c",
                        "tensors");
  std::vector<const CheckpointFile*> files;
  for (const CheckpointFile& f : m.files()) files.push_back(&f);
  std::sort(files.begin(), files.end(), [](const CheckpointFile* a, const CheckpointFile* b) {
    return NaturalLess(a->name(), b->name());
  });
  for (const CheckpointFile* file : files) {
    const CheckpointFile& f = *file;
    absl::StrAppendFormat(&text, "  %-*s %12s  %-10s  %d\n", width, f.name(), Grouped(f.size()),
                          Crc32cHex(f.crc32c()), tensors_in[f.name()]);
  }

  size_t name_width = 4, shape_width = 5;
  for (const auto& [name, entries] : by_name) {
    name_width = std::max(name_width, name.size());
    shape_width = std::max(shape_width, ShapeText(*entries.front()).size());
  }
  absl::StrAppendFormat(&text, "tensors:\n  %-*s %-*s %-5s %-*s %s\n", name_width, "name",
                        shape_width, "shape", "dtype", width, "file", "roles");
  for (const auto& [name, entries] : by_name) {
    std::vector<std::string> roles;
    for (const CheckpointTensor* t : entries) roles.push_back(TensorRoleLabel(t->role()));
    const CheckpointTensor& first = *entries.front();
    absl::StrAppendFormat(&text, "  %-*s %-*s %-5s %-*s %s\n", name_width, name, shape_width,
                          ShapeText(first), first.dtype(), width, first.file(),
                          absl::StrJoin(roles, ","));
  }
  return text;
}

absl::StatusOr<SafetensorsExport> ExportSafetensors(const CheckpointReader& reader,
                                                    const std::string& out_path) {
  // The manifest is sorted by (name, role): parameters come in name order.
  std::vector<const CheckpointTensor*> params;
  for (const CheckpointTensor& t : reader.manifest().tensors()) {
    if (t.role() == PARAM) params.push_back(&t);
  }
  PT_CHECK_ARG(!params.empty(), "checkpoint ", reader.step_dir(), " holds no parameters");

  SafetensorsExport result;
  std::vector<std::string> entries;
  const std::string spec_text = ResolvedSpecText(reader.manifest().spec());
  entries.push_back(absl::StrCat("\"__metadata__\":{\"format\":\"pt\",\"pipetrain_step\":",
                                 JsonString(absl::StrCat(reader.step())),
                                 ",\"pipetrain_spec\":", JsonString(spec_text), "}"));
  int64_t offset = 0;
  for (const CheckpointTensor* t : params) {
    const int64_t bytes = Elements(*t) * static_cast<int64_t>(sizeof(float));
    entries.push_back(absl::StrCat(JsonString(t->name()),
                                   ":{\"dtype\":\"F32\",\"shape\":", ShapeText(*t),
                                   ",\"data_offsets\":[", offset, ",", offset + bytes, "]}"));
    offset += bytes;
    result.parameters += Elements(*t);
  }
  std::string header = absl::StrCat("{", absl::StrJoin(entries, ","), "}");
  // The data starts 8-byte aligned: pad the header with spaces (the format
  // allows trailing whitespace in the header for exactly this).
  header.append((8 - header.size() % 8) % 8, ' ');

  PT_RETURN_IF_ERROR(CheckExportTarget(reader, out_path));
  const std::string tmp = out_path + ".tmp";
  PT_ASSIGN_OR_RETURN(DurableFileWriter writer, DurableFileWriter::Create(tmp));
  const uint64_t header_size = header.size();
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(header_size >> (8 * i));
  PT_RETURN_IF_ERROR(writer.Append(length, sizeof(length)));
  PT_RETURN_IF_ERROR(writer.Append(header.data(), header.size()));
  for (const CheckpointTensor* t : params) {
    // Read allocates only once the file is known to hold the tensor (a
    // crafted manifest cannot ask for more), then f64 is rounded here.
    Tensor stored;
    PT_RETURN_IF_ERROR(reader.Read(t->name(), PARAM, &stored));
    Tensor values = stored;
    if (stored.dtype() != DType::kF32) {
      values = Tensor::Empty(stored.shape(), DType::kF32);
      for (int64_t i = 0; i < stored.numel(); ++i) {
        values.data<float>()[i] = static_cast<float>(stored.At(i));
      }
    }
    PT_RETURN_IF_ERROR(writer.Append(values.raw_data(), values.nbytes()));
    ++result.tensors;
  }
  result.bytes = static_cast<int64_t>(writer.size());
  PT_RETURN_IF_ERROR(writer.Finish());
  PT_RETURN_IF_ERROR(RenameDurably(tmp, out_path));
  return result;
}

absl::Status RunCkptCommand(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(args.empty() ? "no action given" : "expected an action and one PATH",
                     "\nusage: ", kCkptUsage));
  }
  const std::string& action = args[0];
  const std::string& path = args[1];
  if (action == "inspect") {
    PT_ASSIGN_OR_RETURN(const CheckpointReader reader, CheckpointReader::Open(path));
    std::fputs(DescribeCheckpoint(reader).c_str(), stdout);
    return absl::OkStatus();
  }
  if (action == "verify") {
    // --spec FILE: the run's spec, which the checkpoint must fit as well as
    // the spec recorded in its own manifest (always checked).
    const std::string spec_path = absl::GetFlag(FLAGS_spec);
    RunSpec spec;
    if (!spec_path.empty()) {
      PT_ASSIGN_OR_RETURN(spec, LoadRunSpec(spec_path, "", {}));
    }
    PT_ASSIGN_OR_RETURN(const CheckpointReader reader, CheckpointReader::Open(path));
    const auto summary = VerifyCheckpoint(reader);
    const std::vector<std::string> misfits =
        spec_path.empty() ? std::vector<std::string>{}
                          : CheckpointSpecProblems(reader, spec.model(), spec_path);
    if (!misfits.empty()) {
      std::string text = absl::StrCat("checkpoint ", reader.step_dir(), " does not fit ", spec_path,
                                      " (", misfits.size(), " problems):");
      for (size_t i = 0; i < misfits.size() && i < 20; ++i)
        absl::StrAppend(&text, "\n  ", misfits[i]);
      if (misfits.size() > 20) absl::StrAppend(&text, "\n  ... and ", misfits.size() - 20, " more");
      if (!summary.ok()) absl::StrAppend(&text, "\n", summary.status().message());
      return absl::DataLossError(text);
    }
    if (!summary.ok()) return summary.status();
    std::printf(
        "ok: %s (step %lld): %lld files, %lld tensors, %s; sizes and CRC-32C match the "
        "manifest, every value finite, every tensor of %s present with its shape\n",
        reader.step_dir().c_str(), static_cast<long long>(reader.step()),
        static_cast<long long>(summary->files), static_cast<long long>(summary->tensors),
        HumanBytes(summary->bytes).c_str(),
        spec_path.empty() ? "its spec" : absl::StrCat("its spec and ", spec_path).c_str());
    return absl::OkStatus();
  }
  if (action == "export") return Export(path);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown action '", action, "'\nusage: ", kCkptUsage));
}

}  // namespace pipetrain
