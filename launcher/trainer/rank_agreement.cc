#include "launcher/trainer/rank_agreement.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "google/protobuf/util/message_differencer.h"

namespace pipetrain {
namespace {

// Each rank's finding travels in a fixed-size slot of one all-gather, so
// ranks need not agree on lengths first; longer findings are cut.
constexpr int kFindingBytes = 480;

// Bytes <-> an i32 tensor (the communicator's integer type), zero padded.
Tensor BytesToTensor(const std::string& bytes, int64_t size) {
  Tensor t = Tensor::Zeros({(size + 3) / 4}, DType::kI32);
  std::memcpy(t.raw_data(), bytes.data(), std::min<size_t>(bytes.size(), size));
  return t;
}
std::string TensorToBytes(const Tensor& t, int64_t size) {
  std::string bytes(static_cast<size_t>(size), '\0');
  std::memcpy(bytes.data(), t.raw_data(), static_cast<size_t>(size));
  return bytes;
}

// Rank 0's bytes on every rank: the length, then the bytes.
absl::StatusOr<std::string> BroadcastBytes(Communicator& world, const std::string& mine) {
  Tensor length = Tensor::FromVector({static_cast<double>(mine.size())}, {1}, DType::kF64);
  PT_RETURN_IF_ERROR(world.Broadcast(length, 0));
  const auto size = static_cast<int64_t>(length.At(0));
  Tensor bytes = BytesToTensor(world.rank() == 0 ? mine : std::string(), size);
  PT_RETURN_IF_ERROR(world.Broadcast(bytes, 0));
  return TensorToBytes(bytes, size);
}

// How this rank's spec differs from rank 0's: "train.steps: 100 (rank 0),
// 200 (here)"-like lines from protobuf's differencer.
std::string DescribeSpecDifference(const RunSpec& rank0, const RunSpec& mine) {
  std::string report;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&report);
  if (differ.Compare(rank0, mine)) return "";
  // "modified: train.steps: 100 -> 200" per field; kept on one line.
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(report, '\n', absl::SkipEmpty())) {
    lines.push_back(std::string(line));
  }
  return absl::StrJoin(lines, "; ");
}

}  // namespace

std::string BuildFingerprint() {
  std::ifstream exe("/proc/self/exe", std::ios::binary);
  uint64_t state = 0xcbf29ce484222325ull;  // FNV-1a over the executable's bytes
  char buffer[1 << 16];
  while (exe) {
    exe.read(buffer, sizeof(buffer));
    for (std::streamsize i = 0; i < exe.gcount(); ++i) {
      state = (state ^ static_cast<unsigned char>(buffer[i])) * 0x100000001b3ull;
    }
  }
  return absl::StrFormat("%016x", state);
}

absl::Status CheckRanksAgree(Communicator& world, const RunSpec& spec, const std::string& build) {
  if (world.size() == 1) return absl::OkStatus();
  std::string serialized;
  {
    // Deterministic bytes: the same spec serialises the same on every rank.
    google::protobuf::io::StringOutputStream stream(&serialized);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!spec.SerializeToCodedStream(&coded)) {
      return absl::InternalError("cannot serialise the resolved spec");
    }
  }
  PT_ASSIGN_OR_RETURN(const std::string rank0_spec, BroadcastBytes(world, serialized));
  PT_ASSIGN_OR_RETURN(const std::string rank0_build, BroadcastBytes(world, build));

  std::string finding;
  if (rank0_build != build) {
    finding = absl::StrCat("another pipetrain build (", build, "; rank 0 runs ", rank0_build, ")");
  }
  if (rank0_spec != serialized) {
    RunSpec rank0;
    std::string fields = rank0.ParseFromString(rank0_spec)
                             ? DescribeSpecDifference(rank0, spec)
                             : std::string("rank 0's spec cannot be read back");
    if (fields.empty()) fields = "the same fields, serialised differently";
    absl::StrAppend(&finding, finding.empty() ? "" : "; ",
                    "spec fields (rank 0 -> this rank): ", fields);
  }
  if (finding.size() > kFindingBytes) finding = finding.substr(0, kFindingBytes - 3) + "...";

  PT_ASSIGN_OR_RETURN(const std::vector<Tensor> all,
                      world.AllGather(BytesToTensor(finding, kFindingBytes)));
  std::vector<std::string> differing;
  for (size_t r = 0; r < all.size(); ++r) {
    std::string text = TensorToBytes(all[r], kFindingBytes);
    text.resize(std::strlen(text.c_str()));
    if (!text.empty()) differing.push_back(absl::StrCat("rank ", r, ": ", text));
  }
  if (differing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      differing.size(), " of ", world.size(),
      " ranks were started differently from rank 0, so no rank starts:\n  ",
      absl::StrJoin(differing, "\n  "),
      "\nStart every rank with the same spec file, flags and pipetrain binary (under mpirun, one "
      "command line for all ranks)"));
}

}  // namespace pipetrain
