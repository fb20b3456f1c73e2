// Fuzz target: a checkpoint step directory as resume, `translate` and
// `ckpt verify` open it (models/checkpoint.h: CheckpointReader::Open, then
// VerifyCheckpoint and a read of each tensor), and the spec it carries.
//
// The input is a file bundle (fuzz/file_bundle.h) of, in order:
//   options     byte 0 bit 0: recompute the data files' and tensors' CRC-32C
//               in the manifest from the bytes written, so reads get past the
//               checksums to the shapes, offsets and values;
//   manifest    a serialised CheckpointManifest, without its seal;
//   text        manifest.txt;
//   data...     the contents of the manifest's files, in its order.
// A manifest that parses gets its text CRC and seal (kManifestSealBytes)
// recomputed before it is written: otherwise nearly every mutation would
// stop at the first checksum and the checks behind it would never run. One
// that does not parse is written as it is, which exercises the seal check
// and the parse error on raw bytes.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/config/spec_loader.h"
#include "core/io/crc32c.h"
#include "core/tensor.h"
#include "fuzz/file_bundle.h"
#include "fuzz/fuzz_temp_dir.h"
#include "google/protobuf/stubs/logging.h"
#include "models/checkpoint.h"
#include "models/checkpoint_layout.h"

namespace {

using namespace pipetrain;
namespace layout = pipetrain::checkpoint_layout;

// Data files beyond this many are not written (the reader then reports them
// missing); tensors beyond this many are not read one by one.
constexpr size_t kMaxDataFiles = 16;
constexpr int kMaxReads = 32;

uint32_t CrcOf(std::string_view bytes) { return Crc32c(bytes.data(), bytes.size()); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  // protobuf logs every string field with invalid UTF-8 it parses; the
  // reader's answer (a parse failure) is what is under test, not the log.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ClearFuzzTempDir();
  const auto records = fuzz::SplitBundle(data, size, 3 + kMaxDataFiles);
  if (records.size() < 2) return 0;
  const bool fix_data_crcs = !records[0].empty() && (records[0][0] & 1) != 0;
  const std::string_view text = records.size() > 2 ? records[2] : std::string_view();

  const std::string dir = fuzz::FuzzTempDir() + "/ckpt";
  std::filesystem::create_directory(dir);
  CheckpointManifest m;
  if (m.ParseFromArray(records[1].data(), static_cast<int>(records[1].size()))) {
    // Data files are written under the manifest's names when they are names
    // a checkpoint could hold (IsSafeName); the reader refuses the others.
    for (int i = 0; i < m.files_size() && 3 + static_cast<size_t>(i) < records.size(); ++i) {
      const std::string& name = m.files(i).name();
      if (!layout::IsSafeName(name) || name == layout::kManifest || name == layout::kManifestText ||
          name.size() > 200) {
        continue;
      }
      const std::string_view bytes = records[3 + i];
      fuzz::WriteFuzzFile("ckpt/" + name, bytes);
      if (fix_data_crcs) {
        m.mutable_files(i)->set_crc32c(CrcOf(bytes));
        for (CheckpointTensor& t : *m.mutable_tensors()) {
          if (t.file() != name || t.offset() < 0 || t.bytes() < 0 ||
              static_cast<uint64_t>(t.offset()) > bytes.size() ||
              static_cast<uint64_t>(t.bytes()) > bytes.size() - t.offset()) {
            continue;
          }
          t.set_crc32c(CrcOf(bytes.substr(t.offset(), t.bytes())));
        }
      }
    }
    m.set_text_crc32c(CrcOf(text));
    m.clear_manifest_crc32c();
    fuzz::WriteFuzzFile("ckpt/manifest.pb", layout::SealManifest(m.SerializeAsString()));
  } else {
    fuzz::WriteFuzzFile("ckpt/manifest.pb", records[1]);
  }
  fuzz::WriteFuzzFile("ckpt/manifest.txt", text);

  auto reader = CheckpointReader::Open(dir);
  fuzz::Explain("open", reader.status());
  if (!reader.ok()) return 0;
  (void)ValidateRunSpec(reader->manifest().spec(), "manifest spec");
  fuzz::Explain("verify", VerifyCheckpoint(*reader).status());
  int reads = 0;
  for (const CheckpointTensor& t : reader->manifest().tensors()) {
    if (++reads > kMaxReads) break;
    Tensor into;
    (void)reader->Read(t.name(), t.role(), &into);
  }
  return 0;
}
