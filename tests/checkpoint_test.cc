// Checkpoints: CRC-32C known answers, durable files, bit-exact round trips of
// a whole model and of pipeline slices in any combination, and the damage a
// crash, a flipped byte or a truncated file does being caught.
#include "models/checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/config/spec_loader.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "gtest/gtest.h"
#include "models/model_stage.h"
#include "models/transformer_model.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- CRC-32C

// Bit by bit, straight from the definition: the reference the table code must match.
uint32_t BitwiseCrc32c(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

TEST(Crc32cTest, KnownAnswers) {
  EXPECT_EQ(Crc32c(std::string("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string()), 0u);
  // RFC 3720 (iSCSI) appendix B.4.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
  EXPECT_EQ(Crc32cHex(0xE3069283u), "0xe3069283");
}

TEST(Crc32cTest, MatchesTheDefinitionAndExtendsPieceByPiece) {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes.push_back(static_cast<char>((i * 131 + 7) % 256));
  for (size_t length : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 999, 1000}) {
    const std::string prefix = bytes.substr(0, length);
    EXPECT_EQ(Crc32c(prefix), BitwiseCrc32c(prefix)) << length;
    // Any split point, aligned or not, gives the same CRC.
    for (size_t cut : {size_t{0}, length / 3, length / 2 + 1}) {
      if (cut > length) continue;
      const uint32_t first = Crc32c(prefix.data(), cut);
      EXPECT_EQ(Crc32cExtend(first, prefix.data() + cut, length - cut), Crc32c(prefix))
          << length << " cut " << cut;
    }
  }
}

// ---------------------------------------------------------------- files

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (fs::path(::testing::TempDir()) /
             (std::string("ckpt_") + info->test_suite_name() + "_" + info->name()))
                .string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(AtomicFileTest, ReplacesContentsAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir / "latest";
  ASSERT_TRUE(WriteFileAtomically(path, "step_1\n").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "step_22\n").ok());
  auto text = ReadFileToString(path);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "step_22\n");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(ParentDirectory("a/b/c"), "a/b");
  EXPECT_EQ(ParentDirectory("c"), ".");
  EXPECT_EQ(ParentDirectory("/c"), "/");
}

TEST(AtomicFileTest, StreamingWriterCountsBytesAndCrcAndCanBeExclusive) {
  TempDir dir;
  auto writer = DurableFileWriter::Create(dir / "x.bin", /*exclusive=*/true);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE(writer->Append("1234", 4).ok());
  ASSERT_TRUE(writer->AppendZeros(3).ok());
  ASSERT_TRUE(writer->Append("56789", 5).ok());
  EXPECT_EQ(writer->size(), 12u);
  EXPECT_EQ(writer->crc32c(), Crc32c(std::string("1234\0\0\0"
                                                 "56789",
                                                 12)));
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_FALSE(writer->Append("x", 1).ok());  // spent
  auto again = DurableFileWriter::Create(dir / "x.bin", /*exclusive=*/true);
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  auto missing = ReadFileToString(dir / "nope");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
}

// ---------------------------------------------------------------- models

RunSpec TinySpec() {
  auto spec = LoadRunSpec(std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt", "", {});
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

int TotalLayers(const RunSpec& spec) {
  return spec.model().encoder_layers() + spec.model().decoder_layers();
}

// AdamW moments with distinct, recognisable values (v non-negative).
void FillMoments(int64_t salt, Tensor* m, Tensor* v) {
  for (int64_t i = 0; i < m->numel(); ++i) {
    m->data<float>()[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i + salt)));
    v->data<float>()[i] = static_cast<float>(1e-4 * static_cast<double>((i + salt) % 977));
  }
}

// One pipeline slice (or the whole model) with its optimizer state.
struct Slice {
  std::unique_ptr<ModelStage> stage;
  Tensor m, v;
};

Slice MakeSlice(const RunSpec& spec, uint64_t seed, int first, int last) {
  auto stage = ModelStage::Create(spec.model(), DType::kF32, seed, first, last);
  EXPECT_TRUE(stage.ok()) << stage.status();
  Slice s{std::move(*stage), {}, {}};
  const int64_t n = s.stage->params().total_elements();
  s.m = Tensor::Zeros({n}, DType::kF32);
  s.v = Tensor::Zeros({n}, DType::kF32);
  FillMoments(static_cast<int64_t>(seed) * 1000 + first, &s.m, &s.v);
  return s;
}

CheckpointInfo InfoFor(const RunSpec& spec, int64_t step) {
  CheckpointInfo info;
  info.step = step;
  info.spec = spec;
  info.data_cursor = std::string("cursor\0bytes", 12);
  info.rng_seed = 1234;
  return info;
}

std::vector<NamedBlock> Blocks(const Slice& s, bool include_embedding = true) {
  auto blocks = BlocksOfStore(s.stage->params(), s.m, s.v, include_embedding);
  EXPECT_TRUE(blocks.ok()) << blocks.status();
  return *blocks;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Every parameter (and moment) of `to` equals the same-named one of some
// slice in `from`, bit for bit. Returns the number of parameters compared.
int ExpectSameByName(const std::vector<const Slice*>& from, const Slice& to) {
  int compared = 0;
  const ParameterStore& store = to.stage->params();
  for (const ParameterInfo& info : store.infos()) {
    bool found = false;
    for (const Slice* s : from) {
      for (const ParameterInfo& other : s->stage->params().infos()) {
        if (other.name != info.name) continue;
        found = true;
        EXPECT_TRUE(SameBytes(store.flat_params().View(info.offset, info.shape),
                              s->stage->params().flat_params().View(other.offset, other.shape)))
            << info.name;
        EXPECT_TRUE(
            SameBytes(to.m.View(info.offset, info.shape), s->m.View(other.offset, other.shape)))
            << info.name << " adam_m";
        EXPECT_TRUE(
            SameBytes(to.v.View(info.offset, info.shape), s->v.View(other.offset, other.shape)))
            << info.name << " adam_v";
        ++compared;
        break;
      }
      if (found) break;
    }
    EXPECT_TRUE(found) << info.name << " is in no source slice";
  }
  return compared;
}

absl::Status Load(const std::string& path, Slice* into) {
  auto reader = CheckpointReader::Open(path);
  if (!reader.ok()) return reader.status();
  return LoadParameterStore(*reader, &into->stage->params(), &into->m, &into->v);
}

TEST(CheckpointTest, GroupsAndStepNames) {
  EXPECT_EQ(CheckpointGroupOf("embed.weight"), "embed");
  EXPECT_EQ(CheckpointGroupOf("output.weight"), "output");
  EXPECT_EQ(CheckpointGroupOf("encoder.3.self_attn.v.weight"), "encoder.3");
  EXPECT_EQ(CheckpointGroupOf("decoder.17.ffn.fc1.bias"), "decoder.17");
  EXPECT_EQ(CheckpointGroupOf("decoder.final_ln.gamma"), "decoder.final_ln");
  EXPECT_EQ(CheckpointStepDirName(42), "step_42");
}

TEST(CheckpointTest, WholeModelRoundTripIsBitExact) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  const Slice saved = MakeSlice(spec, 7, 0, TotalLayers(spec));
  auto step_dir = SaveCheckpoint(dir.path(), InfoFor(spec, 3), Blocks(saved));
  ASSERT_TRUE(step_dir.ok()) << step_dir.status();
  EXPECT_EQ(*step_dir, dir / "step_3");
  EXPECT_TRUE(HasCheckpoint(dir.path()));
  EXPECT_EQ(*ReadFileToString(dir / "latest"), "step_3\n");

  Slice loaded = MakeSlice(spec, 99, 0, TotalLayers(spec));  // other init, other moments
  ASSERT_FALSE(
      SameBytes(loaded.stage->params().flat_params(), saved.stage->params().flat_params()));
  ASSERT_TRUE(Load(dir.path(), &loaded).ok());
  EXPECT_TRUE(SameBytes(loaded.stage->params().flat_params(), saved.stage->params().flat_params()));
  EXPECT_TRUE(SameBytes(loaded.m, saved.m));
  EXPECT_TRUE(SameBytes(loaded.v, saved.v));

  auto reader = CheckpointReader::Open(dir.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  const CheckpointManifest& m = reader->manifest();
  EXPECT_EQ(m.format_version(), kCheckpointFormatVersion);
  EXPECT_EQ(m.step(), 3);
  EXPECT_EQ(m.data_cursor(), std::string("cursor\0bytes", 12));
  EXPECT_EQ(m.rng_seed(), 1234u);
  EXPECT_EQ(m.spec().SerializeAsString(), spec.SerializeAsString());
  EXPECT_EQ(m.tensors_size(), 3 * static_cast<int>(saved.stage->params().infos().size()));
  // One file per layer group: embed, 2 encoder and 2 decoder layers (DeepNorm
  // is post-norm: no final LNs; the output projection is the tied embedding).
  std::vector<std::string> files;
  for (const CheckpointFile& f : m.files()) files.push_back(f.name());
  EXPECT_EQ(files, (std::vector<std::string>{"decoder.0.bin", "decoder.1.bin", "embed.bin",
                                             "encoder.0.bin", "encoder.1.bin"}));
  for (const CheckpointTensor& t : m.tensors()) EXPECT_EQ(t.offset() % 64, 0) << t.name();
  // No records or temporaries are left; the text manifest is there.
  for (const auto& entry : fs::directory_iterator(*step_dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "manifest.pb" || name == "manifest.txt" || name.ends_with(".bin")) << name;
  }
  EXPECT_FALSE(fs::exists(dir / "step_3.tmp"));
  auto text = ReadFileToString(*step_dir + "/manifest.txt");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("name: \"encoder.0.self_attn.v.weight\""), std::string::npos);
  // A step directory opens directly too.
  auto direct = CheckpointReader::Open(*step_dir);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(direct->step(), 3);
}

TEST(CheckpointTest, PipelineSlicesLoadIntoTheWholeModelAndBack) {
  const RunSpec spec = TinySpec();
  const int layers = TotalLayers(spec);
  for (int cut : {1, 2, 3}) {  // inside the encoder, at the boundary, inside the decoder
    SCOPED_TRACE(cut);
    TempDir dir;
    // Two "ranks", each with its own slice and its own (different) values.
    const Slice first = MakeSlice(spec, 11, 0, cut);
    Slice second = MakeSlice(spec, 22, cut, layers);
    // The tied embedding is synchronised across its holders in training.
    const ParameterInfo& e0 = first.stage->params().infos()[first.stage->embedding_id()];
    const ParameterInfo& e1 = second.stage->params().infos()[second.stage->embedding_id()];
    for (Tensor Slice::*buffer : {&Slice::m, &Slice::v}) {
      std::memcpy((second.*buffer).View(e1.offset, e1.shape).raw_data(),
                  (first.*buffer).View(e0.offset, e0.shape).raw_data(),
                  static_cast<size_t>(NumElements(e0.shape)) * sizeof(float));
    }
    std::memcpy(second.stage->params().flat_params().View(e1.offset, e1.shape).raw_data(),
                first.stage->params().flat_params().View(e0.offset, e0.shape).raw_data(),
                static_cast<size_t>(NumElements(e0.shape)) * sizeof(float));

    // Rank 0 begins, both write (the embedding once), rank 0 finalizes.
    ASSERT_TRUE(BeginCheckpoint(dir.path(), 5).ok());
    ASSERT_TRUE(WriteCheckpointFiles(dir.path(), 5, Blocks(second, false)).ok());
    ASSERT_TRUE(WriteCheckpointFiles(dir.path(), 5, Blocks(first, true)).ok());
    auto finalized = FinalizeCheckpoint(dir.path(), InfoFor(spec, 5));
    ASSERT_TRUE(finalized.ok()) << finalized.status();

    Slice whole = MakeSlice(spec, 33, 0, layers);
    ASSERT_TRUE(Load(dir.path(), &whole).ok());
    EXPECT_EQ(ExpectSameByName({&first, &second}, whole),
              static_cast<int>(whole.stage->params().infos().size()));

    // And back: the whole model saved, loaded into two fresh slices.
    TempDir other;
    ASSERT_TRUE(SaveCheckpoint(other.path(), InfoFor(spec, 6), Blocks(whole)).ok());
    Slice a = MakeSlice(spec, 44, 0, cut), b = MakeSlice(spec, 55, cut, layers);
    ASSERT_TRUE(Load(other.path(), &a).ok());
    ASSERT_TRUE(Load(other.path(), &b).ok());
    ExpectSameByName({&whole}, a);
    ExpectSameByName({&whole}, b);
  }
}

TEST(CheckpointTest, AGroupHasOneWriterAndEveryLayerAWriter) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  const Slice first = MakeSlice(spec, 1, 0, 2), second = MakeSlice(spec, 2, 2, 4);
  ASSERT_TRUE(BeginCheckpoint(dir.path(), 1).ok());
  ASSERT_TRUE(WriteCheckpointFiles(dir.path(), 1, Blocks(first, true)).ok());
  // The last stage also holds the tied embedding; writing it too is a bug.
  const absl::Status twice = WriteCheckpointFiles(dir.path(), 1, Blocks(second, true));
  EXPECT_TRUE(absl::IsAlreadyExists(twice)) << twice;
  EXPECT_NE(twice.message().find("embed.bin"), std::string::npos) << twice;

  // A rank that never wrote: the finalizer names the layers that are missing.
  TempDir lonely;
  ASSERT_TRUE(BeginCheckpoint(lonely.path(), 1).ok());
  ASSERT_TRUE(WriteCheckpointFiles(lonely.path(), 1, Blocks(first, true)).ok());
  auto finalized = FinalizeCheckpoint(lonely.path(), InfoFor(spec, 1));
  ASSERT_FALSE(finalized.ok());
  EXPECT_NE(finalized.status().message().find("decoder.1"), std::string::npos)
      << finalized.status();
  EXPECT_FALSE(HasCheckpoint(lonely.path()));

  // Writing before BeginCheckpoint is refused.
  TempDir fresh;
  EXPECT_FALSE(WriteCheckpointFiles(fresh.path(), 1, Blocks(first)).ok());
}

// A file of the checkpoint, damaged in place.
void FlipByte(const std::string& path, int64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(offset);
  f.write(&c, 1);
}

TEST(CheckpointTest, VerifyNamesTheFileAndTensorACorruptByteHit) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  const Slice saved = MakeSlice(spec, 7, 0, TotalLayers(spec));
  ASSERT_TRUE(SaveCheckpoint(dir.path(), InfoFor(spec, 2), Blocks(saved)).ok());
  {
    auto reader = CheckpointReader::Open(dir.path());
    ASSERT_TRUE(reader.ok());
    auto summary = VerifyCheckpoint(*reader);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->files, 5);
    EXPECT_EQ(summary->tensors, reader->manifest().tensors_size());
  }
  auto reader = CheckpointReader::Open(dir.path());
  ASSERT_TRUE(reader.ok());
  const CheckpointTensor* hit = reader->Find("encoder.1.ffn.fc1.weight", ADAM_V);
  ASSERT_NE(hit, nullptr);
  FlipByte(dir / "step_2/encoder.1.bin", hit->offset() + 10);

  auto reopened = CheckpointReader::Open(dir.path());
  ASSERT_TRUE(reopened.ok());
  auto verified = VerifyCheckpoint(*reopened);
  ASSERT_FALSE(verified.ok());
  const std::string message(verified.status().message());
  EXPECT_NE(message.find("encoder.1.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("encoder.1.ffn.fc1.weight (adam_v)"), std::string::npos) << message;
  EXPECT_NE(message.find("corrupted"), std::string::npos) << message;
  // Only that tensor is blamed.
  EXPECT_EQ(message.find("encoder.1.ffn.fc1.weight (param)"), std::string::npos) << message;
  // Loading fails too, naming the file.
  Slice into = MakeSlice(spec, 8, 0, TotalLayers(spec));
  const absl::Status loaded =
      LoadParameterStore(*reopened, &into.stage->params(), &into.m, &into.v);
  EXPECT_TRUE(absl::IsDataLoss(loaded)) << loaded;
  EXPECT_NE(loaded.message().find("encoder.1.bin"), std::string::npos) << loaded;
}

TEST(CheckpointTest, VerifyCatchesTruncationAndNonFiniteValues) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  Slice saved = MakeSlice(spec, 7, 0, TotalLayers(spec));
  // A NaN in one weight: a well-formed file that must not pass verify.
  saved.stage->params().flat_params().data<float>()[5] = std::nanf("");
  ASSERT_TRUE(SaveCheckpoint(dir.path(), InfoFor(spec, 4), Blocks(saved)).ok());
  const std::string file = dir / "step_4/decoder.1.bin";
  fs::resize_file(file, fs::file_size(file) - 100);

  auto reader = CheckpointReader::Open(dir.path());
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto verified = VerifyCheckpoint(*reader);
  ASSERT_FALSE(verified.ok());
  const std::string message(verified.status().message());
  EXPECT_NE(message.find("decoder.1.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("embed.weight (param) has 1 non-finite values"), std::string::npos)
      << message;
}

TEST(CheckpointTest, MissingManifestOrLatestIsReportedNotCrashed) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  const Slice saved = MakeSlice(spec, 7, 0, TotalLayers(spec));
  ASSERT_TRUE(SaveCheckpoint(dir.path(), InfoFor(spec, 1), Blocks(saved)).ok());
  fs::remove(dir / "step_1/manifest.pb");
  auto via_latest = CheckpointReader::Open(dir.path());
  ASSERT_FALSE(via_latest.ok());
  EXPECT_NE(via_latest.status().message().find("manifest.pb"), std::string::npos)
      << via_latest.status();
  auto direct = CheckpointReader::Open(dir / "step_1");
  ASSERT_FALSE(direct.ok());
  EXPECT_NE(direct.status().message().find("manifest.pb"), std::string::npos) << direct.status();
  auto nothing = CheckpointReader::Open(dir / "no_such_run");
  EXPECT_TRUE(absl::IsNotFound(nothing.status())) << nothing.status();
  auto file = CheckpointReader::Open(dir / "latest");
  EXPECT_TRUE(absl::IsInvalidArgument(file.status())) << file.status();
  // A garbled manifest or `latest` is an error naming the file.
  ASSERT_TRUE(WriteFileDurably(dir / "step_1/manifest.pb", "\xff\xff garbage").ok());
  auto garbled = CheckpointReader::Open(dir / "step_1");
  EXPECT_TRUE(absl::IsDataLoss(garbled.status())) << garbled.status();
  ASSERT_TRUE(WriteFileDurably(dir / "latest", "../elsewhere\n").ok());
  auto bad_latest = CheckpointReader::Open(dir.path());
  EXPECT_TRUE(absl::IsDataLoss(bad_latest.status())) << bad_latest.status();
}

TEST(CheckpointTest, ACrashAtAnyPointLeavesTheOldCheckpointOrTheNew) {
  const RunSpec spec = TinySpec();
  const int layers = TotalLayers(spec);
  const Slice old_state = MakeSlice(spec, 1, 0, layers);
  const Slice new_state = MakeSlice(spec, 2, 0, layers);
  for (const std::string point :
       {"file:embed", "file:encoder.1", "file:decoder.1", "manifest", "rename", "latest"}) {
    SCOPED_TRACE(point);
    TempDir dir;
    ASSERT_TRUE(SaveCheckpoint(dir.path(), InfoFor(spec, 10), Blocks(old_state)).ok());
    SetCheckpointFaultHookForTesting([&](const std::string& at) {
      return at == point ? absl::AbortedError("injected crash at " + at) : absl::OkStatus();
    });
    auto crashed = SaveCheckpoint(dir.path(), InfoFor(spec, 20), Blocks(new_state));
    SetCheckpointFaultHookForTesting(nullptr);
    ASSERT_TRUE(absl::IsAborted(crashed.status())) << crashed.status();

    // The run directory still resumes from the old checkpoint, intact.
    auto reader = CheckpointReader::Open(dir.path());
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ(reader->step(), 10);
    EXPECT_TRUE(VerifyCheckpoint(*reader).ok());
    Slice resumed = MakeSlice(spec, 3, 0, layers);
    ASSERT_TRUE(LoadParameterStore(*reader, &resumed.stage->params(), &resumed.m, &resumed.v).ok());
    ExpectSameByName({&old_state}, resumed);
    // What the crash left is not a checkpoint.
    if (fs::exists(dir / "step_20.tmp")) {
      EXPECT_FALSE(CheckpointReader::Open(dir / "step_20.tmp").ok());
    }

    // The next save of that step goes through and cleans up.
    auto retried = SaveCheckpoint(dir.path(), InfoFor(spec, 20), Blocks(new_state));
    ASSERT_TRUE(retried.ok()) << retried.status();
    auto after = CheckpointReader::Open(dir.path());
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->step(), 20);
    ASSERT_TRUE(LoadParameterStore(*after, &resumed.stage->params(), &resumed.m, &resumed.v).ok());
    ExpectSameByName({&new_state}, resumed);
    EXPECT_FALSE(fs::exists(dir / "step_20.tmp"));
  }
}

std::vector<std::string> StepDirs(const std::string& run_dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(run_dir)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(CheckpointTest, KeepsTheLastKAndLeavesStepsItDidNotWrite) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  const Slice state = MakeSlice(spec, 1, 0, TotalLayers(spec));
  for (int step = 1; step <= 5; ++step) {
    CheckpointInfo info = InfoFor(spec, step * 100);
    info.keep_last = 2;
    ASSERT_TRUE(SaveCheckpoint(dir.path(), info, Blocks(state)).ok()) << step;
  }
  EXPECT_EQ(StepDirs(dir.path()), (std::vector<std::string>{"step_400", "step_500"}));
  EXPECT_EQ(*ReadFileToString(dir / "latest"), "step_500\n");

  // Rolled back to an older step: newer steps (an abandoned continuation)
  // are not deleted, the older ones beyond K are.
  CheckpointInfo info = InfoFor(spec, 450);
  info.keep_last = 1;
  ASSERT_TRUE(SaveCheckpoint(dir.path(), info, Blocks(state)).ok());
  EXPECT_EQ(StepDirs(dir.path()), (std::vector<std::string>{"step_450", "step_500"}));
  EXPECT_EQ(*ReadFileToString(dir / "latest"), "step_450\n");

  // keep_last 0 keeps everything; saving the latest step again is refused.
  TempDir all;
  for (int step = 1; step <= 3; ++step) {
    ASSERT_TRUE(SaveCheckpoint(all.path(), InfoFor(spec, step), Blocks(state)).ok());
  }
  EXPECT_EQ(StepDirs(all.path()).size(), 3u);
  auto again = SaveCheckpoint(all.path(), InfoFor(spec, 3), Blocks(state));
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status())) << again.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(BeginCheckpoint(all.path(), 3)));
  EXPECT_TRUE(
      absl::IsFailedPrecondition(FinalizeCheckpoint(all.path(), InfoFor(spec, 3)).status()));
  EXPECT_EQ(*ReadFileToString(all / "latest"), "step_3\n");
}

TEST(CheckpointTest, InferenceOnlyCheckpointsAndMismatchedModels) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  const Slice state = MakeSlice(spec, 1, 0, TotalLayers(spec));
  auto blocks = BlocksOfStore(state.stage->params(), Tensor(), Tensor());
  ASSERT_TRUE(blocks.ok());
  ASSERT_TRUE(SaveCheckpoint(dir.path(), InfoFor(spec, 1), *blocks).ok());
  auto reader = CheckpointReader::Open(dir.path());
  ASSERT_TRUE(reader.ok());
  EXPECT_FALSE(reader->has_optimizer_state());
  Slice into = MakeSlice(spec, 2, 0, TotalLayers(spec));
  const absl::Status resume = LoadParameterStore(*reader, &into.stage->params(), &into.m, &into.v);
  EXPECT_TRUE(absl::IsFailedPrecondition(resume)) << resume;
  ASSERT_TRUE(LoadParameterStore(*reader, &into.stage->params(), nullptr, nullptr).ok());
  EXPECT_TRUE(SameBytes(into.stage->params().flat_params(), state.stage->params().flat_params()));

  // Another model shape: one error names the mis-shaped tensors.
  RunSpec wider = spec;
  wider.mutable_model()->set_ffn_dim(2 * spec.model().ffn_dim());
  Slice other = MakeSlice(wider, 3, 0, TotalLayers(wider));
  const absl::Status mismatch =
      LoadParameterStore(*reader, &other.stage->params(), nullptr, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(mismatch)) << mismatch;
  EXPECT_NE(mismatch.message().find("encoder.0.ffn.fc1.weight (param): shape [128,64] in the "
                                    "checkpoint, [256,64] in the model"),
            std::string::npos)
      << mismatch;
}

TEST(CheckpointTest, F64CheckpointsLoadIntoF32Models) {
  TempDir dir;
  const RunSpec spec = TinySpec();
  auto f64 = ModelStage::Create(spec.model(), DType::kF64, 5, 0, TotalLayers(spec));
  ASSERT_TRUE(f64.ok());
  auto blocks = BlocksOfStore((*f64)->params(), Tensor(), Tensor());
  ASSERT_TRUE(blocks.ok());
  ASSERT_TRUE(SaveCheckpoint(dir.path(), InfoFor(spec, 1), *blocks).ok());
  auto reader = CheckpointReader::Open(dir.path());
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(reader->Find("embed.weight", PARAM)->dtype(), "f64");
  Slice f32 = MakeSlice(spec, 6, 0, TotalLayers(spec));
  ASSERT_TRUE(LoadParameterStore(*reader, &f32.stage->params(), nullptr, nullptr).ok());
  const Tensor& a = (*f64)->params().flat_params();
  const Tensor& b = f32.stage->params().flat_params();
  ASSERT_EQ(a.numel(), b.numel());
  for (int64_t i = 0; i < a.numel(); i += 97) {
    EXPECT_EQ(b.data<float>()[i], static_cast<float>(a.data<double>()[i])) << i;
  }
  // Read into a fresh tensor keeps the stored dtype.
  Tensor fresh;
  ASSERT_TRUE(reader->Read("embed.weight", PARAM, &fresh).ok());
  EXPECT_EQ(fresh.dtype(), DType::kF64);
  EXPECT_TRUE(absl::IsNotFound(reader->Read("embed.weight", ADAM_M, &fresh)));
}

}  // namespace
}  // namespace pipetrain
