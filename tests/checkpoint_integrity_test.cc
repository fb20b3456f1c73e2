// Issue 13 §1 and §7: every byte of a checkpoint is covered by a checksum,
// a checkpoint is checked for completeness against its spec, and hostile
// checkpoints (FIFOs, links out of the directory, crafted manifests) and
// hostile export targets are refused instead of hanging, aborting or being
// replaced. Everything stays inside the test's temporary directory; every
// command that could hang runs under `timeout`, and those that could
// allocate without bound under `ulimit -v`.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "models/checkpoint.h"
#include "models/checkpoint_layout.h"
#include "models/transformer_model.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/tiny_checkpoint.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::RunPipetrain;

// A hang fails the command (exit 124) instead of blocking the suite; a
// runaway allocation fails under the 4 GiB address-space limit.
std::string Bounded(const std::string& args) {
  return absl::StrCat("ulimit -v 4000000; timeout 30 ", PIPETRAIN_BINARY, " ", args, " 2>&1");
}

void FlipBit(const std::string& path, int64_t bit) {
  std::string bytes = *ReadFileToString(path);
  bytes[static_cast<size_t>(bit / 8)] ^= static_cast<char>(1 << (bit % 8));
  ASSERT_TRUE(WriteFileDurably(path, bytes).ok());
}

class CheckpointIntegrityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        (fs::path(::testing::TempDir()) / absl::StrCat("ckpt_integrity_", info->name())).string();
    fs::remove_all(dir_);
    auto saved = testing::SaveTinyCheckpoint(dir_);
    ASSERT_TRUE(saved.ok()) << saved.status();
    spec_ = saved->spec;
    model_ = std::move(saved->model);
    step_dir_ = saved->step_dir;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Rewrites manifest.pb and manifest.txt as a writer would (sealed, text
  // CRC set) after `edit`: a crafted manifest every checksum agrees with.
  void CraftManifest(const std::function<void(CheckpointManifest*)>& edit) {
    CheckpointManifest m;
    ASSERT_TRUE(m.ParseFromString(*ReadFileToString(step_dir_ + "/manifest.pb")));
    m.clear_manifest_crc32c();
    m.clear_text_crc32c();
    edit(&m);
    std::string text, binary;
    ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(m, &text));
    m.set_text_crc32c(Crc32c(text.data(), text.size()));
    ASSERT_TRUE(m.SerializeToString(&binary));
    ASSERT_TRUE(WriteFileDurably(step_dir_ + "/manifest.txt", text).ok());
    ASSERT_TRUE(
        WriteFileDurably(step_dir_ + "/manifest.pb", checkpoint_layout::SealManifest(binary)).ok());
  }

  // What verify, resume and translate do with the checkpoint, as library
  // calls: each returns the first error.
  absl::Status Verify() const {
    auto reader = CheckpointReader::Open(dir_);
    if (!reader.ok()) return reader.status();
    return VerifyCheckpoint(*reader).status();
  }
  absl::Status Resume() const {
    auto reader = CheckpointReader::Open(dir_);
    if (!reader.ok()) return reader.status();
    auto model = TransformerModel::Create(reader->manifest().spec().model(), DType::kF32, 1);
    if (!model.ok()) return model.status();
    const int64_t n = (*model)->params().total_elements();
    Tensor m = Tensor::Zeros({n}, DType::kF32), v = Tensor::Zeros({n}, DType::kF32);
    return LoadParameterStore(*reader, &(*model)->params(), &m, &v);
  }
  absl::Status Translate() const {
    auto reader = CheckpointReader::Open(dir_);
    if (!reader.ok()) return reader.status();
    auto model = TransformerModel::Create(reader->manifest().spec().model(), DType::kF32, 0);
    if (!model.ok()) return model.status();
    return LoadParameterStore(*reader, &(*model)->params(), nullptr, nullptr);
  }

  std::string dir_, step_dir_;
  RunSpec spec_;
  std::unique_ptr<TransformerModel> model_;
};

TEST_F(CheckpointIntegrityTest, ManifestEndsWithTheCrcOfItsOwnBytes) {
  const std::string bytes = *ReadFileToString(step_dir_ + "/manifest.pb");
  uint32_t stored = 0, computed = 0;
  ASSERT_TRUE(checkpoint_layout::ManifestSeal(bytes, &stored, &computed));
  EXPECT_EQ(stored, computed);
  CheckpointManifest m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  EXPECT_EQ(m.format_version(), 2);
  EXPECT_EQ(m.manifest_crc32c(), stored);
  const std::string text = *ReadFileToString(step_dir_ + "/manifest.txt");
  EXPECT_EQ(m.text_crc32c(), Crc32c(text.data(), text.size()));
  ASSERT_TRUE(Verify().ok()) << Verify();

  // One bit of the data cursor ("cursor" -> "cursos"): parses, but the CRC says no.
  const size_t at = bytes.find("cursor");
  ASSERT_NE(at, std::string::npos);
  FlipBit(step_dir_ + "/manifest.pb", static_cast<int64_t>(at + 5) * 8);
  const absl::Status status = Verify();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("manifest.pb has CRC-32C"), std::string::npos) << status;
  EXPECT_NE(status.message().find("none of its fields can be trusted"), std::string::npos)
      << status;
}

TEST_F(CheckpointIntegrityTest, HundredRandomBitFlipsAnywhereAreAllCaught) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(step_dir_)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 7u);  // 5 data files, manifest.pb, manifest.txt
  std::mt19937_64 rng(13);
  int verify_caught = 0, resume_caught = 0, translate_caught = 0;
  std::vector<std::string> missed;
  for (int i = 0; i < 100; ++i) {
    // A file at random, then a bit in it: the small manifests get as many
    // flips as the large data files.
    const std::string& file = files[rng() % files.size()];
    const int64_t bit = static_cast<int64_t>(rng() % (fs::file_size(file) * 8));
    FlipBit(file, bit);
    const bool v = !Verify().ok(), r = !Resume().ok(), t = !Translate().ok();
    verify_caught += v;
    resume_caught += r;
    translate_caught += t;
    if (!v || !r || !t)
      missed.push_back(absl::StrCat(fs::path(file).filename().string(), " bit ", bit));
    FlipBit(file, bit);
  }
  EXPECT_EQ(verify_caught, 100) << ::testing::PrintToString(missed);
  EXPECT_EQ(resume_caught, 100) << ::testing::PrintToString(missed);
  EXPECT_EQ(translate_caught, 100) << ::testing::PrintToString(missed);
  EXPECT_TRUE(Verify().ok()) << Verify();
}

TEST_F(CheckpointIntegrityTest, FormatOneManifestWithoutCrcIsReadWithAWarning) {
  CheckpointManifest m;
  ASSERT_TRUE(m.ParseFromString(*ReadFileToString(step_dir_ + "/manifest.pb")));
  m.clear_manifest_crc32c();
  m.clear_text_crc32c();
  m.set_format_version(1);
  std::string binary;
  ASSERT_TRUE(m.SerializeToString(&binary));
  ASSERT_TRUE(WriteFileDurably(step_dir_ + "/manifest.pb", binary).ok());
  EXPECT_TRUE(Verify().ok()) << Verify();
  const auto r = RunCommand(Bounded("ckpt verify " + dir_));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("is format 1, written before manifests carried their own CRC-32C"),
            std::string::npos)
      << r.output;
  // A format-2 manifest that lost its seal is damaged, not old.
  m.set_format_version(2);
  ASSERT_TRUE(m.SerializeToString(&binary));
  ASSERT_TRUE(WriteFileDurably(step_dir_ + "/manifest.pb", binary).ok());
  EXPECT_NE(Verify().message().find("does not end with its CRC-32C"), std::string::npos)
      << Verify();
}

TEST_F(CheckpointIntegrityTest, DamagedManifestTextIsCaught) {
  FlipBit(step_dir_ + "/manifest.txt", 100);
  const absl::Status status = Verify();
  EXPECT_NE(status.message().find("manifest.txt has CRC-32C"), std::string::npos) << status;
}

TEST_F(CheckpointIntegrityTest, VerifyFailsWhenEveryTensorEntryIsDeleted) {
  CraftManifest([](CheckpointManifest* m) { m->clear_tensors(); });
  const auto r = RunCommand(Bounded("ckpt verify " + dir_));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing decoder.0.cross_attn.k.bias (param), which the spec in"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("ok: "), std::string::npos) << r.output;
}

TEST_F(CheckpointIntegrityTest, VerifyFailsWhenOneLayerIsMissing) {
  CraftManifest([](CheckpointManifest* m) {
    auto* tensors = m->mutable_tensors();
    tensors->erase(std::remove_if(tensors->begin(), tensors->end(),
                                  [](const CheckpointTensor& t) {
                                    return t.name().rfind("decoder.1.", 0) == 0;
                                  }),
                   tensors->end());
  });
  const absl::Status status = Verify();
  EXPECT_NE(status.message().find("missing decoder.1."), std::string::npos) << status;
}

TEST_F(CheckpointIntegrityTest, VerifyAgainstTheRunsSpec) {
  const auto same = RunCommand(
      Bounded("ckpt verify " + dir_ + " --spec " + PIPETRAIN_SOURCE_DIR + "/configs/tiny.pbtxt"));
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("present with its shape"), std::string::npos) << same.output;
  // The same model with a wider FFN: every FFN tensor has another shape.
  RunSpec wider = spec_;
  wider.mutable_model()->set_ffn_dim(256);
  const std::string spec_path = dir_ + "/wider.pbtxt";
  ASSERT_TRUE(WriteFileDurably(spec_path, ResolvedSpecText(wider)).ok());
  const auto other = RunCommand(Bounded("ckpt verify " + dir_ + " --spec " + spec_path));
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("does not fit " + spec_path), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("decoder.0.ffn.fc1.weight (param): shape [128,64] in the "
                              "checkpoint, [256,64] in " +
                              spec_path),
            std::string::npos)
      << other.output;
}

TEST_F(CheckpointIntegrityTest, FifosInsteadOfFilesAreRefusedWithoutHanging) {
  for (const std::string name : {"encoder.0.bin", "manifest.pb", "manifest.txt"}) {
    const std::string path = step_dir_ + "/" + name;
    const std::string saved = path + ".saved";
    fs::rename(path, saved);
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    for (const std::string action : {"verify ", "export "}) {
      const auto r = RunCommand(Bounded("ckpt " + action + dir_ + " --out " + dir_ + "/x.st"));
      EXPECT_EQ(r.exit_code, 1) << name << ": " << r.output;
      EXPECT_NE(r.output.find(path + " is not a regular file"), std::string::npos) << r.output;
    }
    fs::remove(path);
    fs::rename(saved, path);
  }
  // `latest` too.
  const std::string latest = dir_ + "/latest";
  fs::remove(latest);
  ASSERT_EQ(::mkfifo(latest.c_str(), 0600), 0);
  const auto r = RunCommand(Bounded("ckpt verify " + dir_));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(latest + " is not a regular file"), std::string::npos) << r.output;
}

TEST_F(CheckpointIntegrityTest, SymlinksOutOfTheCheckpointAreRefused) {
  // A link to a byte-identical copy elsewhere: every CRC matches, but the
  // checkpoint would read a file it does not hold.
  const std::string outside = dir_ + "/elsewhere.bin";
  const std::string path = step_dir_ + "/encoder.0.bin";
  fs::rename(path, outside);
  fs::create_symlink(outside, path);
  absl::Status status = Verify();
  EXPECT_NE(status.message().find(path + " is a symbolic link that leads out of the checkpoint"),
            std::string::npos)
      << status;
  // A link inside the directory is fine.
  fs::remove(path);
  fs::rename(outside, step_dir_ + "/encoder.0.data");
  fs::create_symlink("encoder.0.data", path);
  EXPECT_TRUE(Verify().ok()) << Verify();
}

TEST_F(CheckpointIntegrityTest, CraftedSizesNeverAllocateOrOverflow) {
  // 2 EiB claimed in a file of a few hundred KB, every checksum consistent.
  CraftManifest([](CheckpointManifest* m) {
    for (CheckpointFile& f : *m->mutable_files()) {
      if (f.name() == "encoder.0.bin") f.set_size(int64_t{1} << 62);
    }
    for (CheckpointTensor& t : *m->mutable_tensors()) {
      if (t.file() != "encoder.0.bin" || t.role() != PARAM) continue;
      t.clear_shape();
      t.add_shape(int64_t{1} << 30);
      t.add_shape(int64_t{1} << 29);
      t.set_bytes(int64_t{1} << 61);
      break;
    }
  });
  for (const std::string action : {"verify ", "export "}) {
    const auto r = RunCommand(Bounded("ckpt " + action + dir_ + " --out " + dir_ + "/x.st"));
    // verify reaches the tensor ("the file ends before byte ..."), export
    // stops at the file's size first; both without allocating.
    EXPECT_EQ(r.exit_code, 1) << action << r.output;
    EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;
  }
  // Sums and products that overflow int64 are invalid, not wrapped.
  CraftManifest([](CheckpointManifest* m) {
    CheckpointTensor& t = *m->mutable_tensors(0);
    t.clear_shape();
    for (int i = 0; i < 3; ++i) t.add_shape(int64_t{1} << 32);  // 2^96 elements: wraps to 0
    t.set_bytes(0);
  });
  EXPECT_NE(Verify().message().find("has an invalid dtype, shape"), std::string::npos) << Verify();
  CraftManifest([](CheckpointManifest* m) {
    CheckpointTensor& t = *m->mutable_tensors(1);
    t.set_offset(std::numeric_limits<int64_t>::max() - 8);
  });
  EXPECT_NE(Verify().message().find("lies outside the file's"), std::string::npos) << Verify();
}

TEST_F(CheckpointIntegrityTest, ExportNeverReplacesANonRegularFile) {
  // A FIFO stands in for /dev/full (never write to a real device here: CI runs as root).
  const std::string fifo = dir_ + "/out.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = RunCommand(Bounded("ckpt export " + dir_ + " --out " + fifo));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(fifo + " is a FIFO; pipetrain writes files by replacing them"),
            std::string::npos)
      << r.output;
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // A symbolic link (to the FIFO) stays a link.
  const std::string link = dir_ + "/out.link";
  fs::create_symlink(fifo, link);
  r = RunCommand(Bounded("ckpt export " + dir_ + " --out " + link));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(link + " is a symbolic link"), std::string::npos) << r.output;
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // A FIFO where the temporary file goes would block the open forever.
  const std::string out = dir_ + "/model.safetensors";
  ASSERT_EQ(::mkfifo((out + ".tmp").c_str(), 0600), 0);
  r = RunCommand(Bounded("ckpt export " + dir_ + " --out " + out));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(out + ".tmp is a FIFO"), std::string::npos) << r.output;
  // And the library call every atomic write goes through.
  const absl::Status status = WriteFileAtomically(fifo, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(CheckpointIntegrityTest, ExportIntoTheCheckpointItReadsIsRefused) {
  for (const std::string& out :
       {step_dir_ + "/encoder.0.bin", step_dir_ + "/model.safetensors", dir_ + "/latest"}) {
    const auto r = RunCommand(Bounded("ckpt export " + dir_ + " --out " + out));
    EXPECT_EQ(r.exit_code, 1) << out << ": " << r.output;
    EXPECT_NE(r.output.find("--out " + out + " is "), std::string::npos) << r.output;
  }
  EXPECT_FALSE(fs::exists(step_dir_ + "/model.safetensors"));
  EXPECT_TRUE(Verify().ok()) << Verify();
  // Beside the checkpoint, in the run directory, is fine.
  const auto r = RunCommand(Bounded("ckpt export " + dir_ + " --out " + dir_ + "/m.safetensors"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace pipetrain

namespace pipetrain {
namespace {

// The real commands on a checkpoint a real run wrote: one flipped bit in the
// manifest, in manifest.txt and in a data file is refused by `ckpt verify`,
// by resuming (`train` with the same output_dir) and by `translate`.
TEST(CheckpointIntegrityCommandTest, FlippedBitsAreRefusedByVerifyResumeAndTranslate) {
  const std::string run = (fs::path(::testing::TempDir()) / "ckpt_integrity_commands").string();
  fs::remove_all(run);
  const std::string train =
      "train --spec configs/tiny.pbtxt --set checkpoint_interval=2 "
      "--set output_dir=" +
      run;
  const auto first = RunCommand(Bounded(train + " --steps 2"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string step_dir = run + "/step_2";
  std::mt19937_64 rng(7);
  for (const std::string name : {"manifest.pb", "manifest.txt", "decoder.1.bin"}) {
    const std::string file = step_dir + "/" + name;
    const int64_t bit = static_cast<int64_t>(rng() % (fs::file_size(file) * 8));
    FlipBit(file, bit);
    const std::string what = absl::StrCat(name, " bit ", bit);
    const auto verify = RunCommand(Bounded("ckpt verify " + run));
    EXPECT_EQ(verify.exit_code, 1) << what << verify.output;
    const auto resume = RunCommand(Bounded(train + " --steps 4"));
    EXPECT_NE(resume.exit_code, 0) << what << resume.output;
    EXPECT_NE(resume.output.find(name), std::string::npos) << what << resume.output;
    const auto translate = RunCommand(
        "echo hello | " + Bounded("translate --ckpt " + run + " --src-lang en --tgt-lang de"));
    EXPECT_NE(translate.exit_code, 0) << what << translate.output;
    EXPECT_NE(translate.output.find(name), std::string::npos) << what << translate.output;
    FlipBit(file, bit);
  }
  const auto intact = RunCommand(Bounded("ckpt verify " + run));
  EXPECT_EQ(intact.exit_code, 0) << intact.output;
  EXPECT_FALSE(fs::exists(run + "/step_4"));  // no refused resume trained on
  fs::remove_all(run);
}

}  // namespace
}  // namespace pipetrain
