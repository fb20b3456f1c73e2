// `pipetrain ckpt inspect|verify|export` as a user runs them, and the
// .safetensors export checked byte by byte here and by the reference
// `safetensors` package (tests/golden/check_safetensors.py).
#include "launcher/ckpt_command.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config/spec_loader.h"
#include "core/io/atomic_file.h"
#include "gtest/gtest.h"
#include "models/checkpoint.h"
#include "models/transformer_model.h"
#include "tests/testing/run_binary.h"
#include "tests/testing/tiny_checkpoint.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::RunPipetrain;

// A run directory with one checkpoint of the tiny model (step 3), and the
// model it was saved from.
class CkptCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (fs::path(::testing::TempDir()) / absl::StrCat("ckpt_cmd_", info->name())).string();
    fs::remove_all(dir_);
    auto saved = testing::SaveTinyCheckpoint(dir_);
    ASSERT_TRUE(saved.ok()) << saved.status();
    spec_ = saved->spec;
    model_ = std::move(saved->model);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // FNV-1a over (name, f32 bytes) of every parameter in sorted name order,
  // as check_safetensors.py computes it from the exported file.
  std::string ExpectedDigest() const {
    std::map<std::string, const ParameterInfo*> sorted;
    for (const ParameterInfo& info : model_->params().infos()) sorted[info.name] = &info;
    uint64_t state = 0xcbf29ce484222325ull;
    for (const auto& [name, info] : sorted) {
      state = Fnv1a64(name.data(), name.size(), state);
      const Tensor view = model_->params().flat_params().View(info->offset, info->shape);
      state = Fnv1a64(view.raw_data(), view.nbytes(), state);
    }
    return absl::StrFormat("%016x", state);
  }

  std::string dir_;
  RunSpec spec_;
  std::unique_ptr<TransformerModel> model_;
};

TEST_F(CkptCommandTest, InspectPrintsStepSpecFilesAndTensors) {
  const auto r = RunPipetrain("ckpt inspect " + dir_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 3, rng seed 1, data cursor 6 bytes"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("model tiny: ENCODER_DECODER, 2+2 layers, d_model 64"), std::string::npos)
      << r.output;
  // DeepNorm at 2+2 (DESIGN.md): encoder 0.81·(2⁴·2)^(1/16), 0.87·(2⁴·2)^(−1/16);
  // decoder (3·2)^(1/4), (12·2)^(−1/4), rounded to 6 digits in Python.
  EXPECT_NE(r.output.find("norms: DEEPNORM encoder alpha=1.0059 beta=0.700563, decoder "
                          "alpha=1.56508 beta=0.451801\n"),
            std::string::npos)
      << r.output;
  // Digits in groups of three, as inspect prints counts.
  const std::string digits = absl::StrCat(model_->params().total_elements());
  std::string parameters;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) parameters += ',';
    parameters += digits[i];
  }
  EXPECT_NE(r.output.find("parameters: " + parameters + " in "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("optimizer state: AdamW m and v"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("files: 5,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("encoder.1.bin"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("param,adam_m,adam_v"), std::string::npos) << r.output;
  // A step directory works as well as the run directory.
  const auto direct = RunPipetrain("ckpt inspect " + dir_ + "/step_3");
  ASSERT_EQ(direct.exit_code, 0) << direct.output;
}

TEST_F(CkptCommandTest, InspectListsLayersInNumericOrder) {
  RunSpec deep = spec_;
  deep.mutable_model()->set_encoder_layers(11);
  deep.mutable_model()->set_decoder_layers(0);
  deep.mutable_model()->set_kind(ENCODER_ONLY);
  auto model = TransformerModel::Create(deep.model(), DType::kF32, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string run = dir_ + "/deep";
  CheckpointInfo info;
  info.step = 1;
  info.spec = deep;
  ASSERT_TRUE(SaveParameterStore(run, info, (*model)->params(), Tensor(), Tensor()).ok());
  auto reader = CheckpointReader::Open(run);
  ASSERT_TRUE(reader.ok()) << reader.status();
  const std::string text = DescribeCheckpoint(*reader);
  for (const std::string& key :
       {std::string("  encoder.2.bin "), std::string("  encoder.2.ffn.fc1.bias ")}) {
    const std::string later = absl::StrCat("  encoder.10", key.substr(11));
    ASSERT_NE(text.find(key), std::string::npos) << key << "\n" << text;
    ASSERT_NE(text.find(later), std::string::npos) << later << "\n" << text;
    EXPECT_LT(text.find(key), text.find(later)) << text;
  }
  EXPECT_NE(text.find("optimizer state: none (inference only)"), std::string::npos) << text;
  // One stack of 11 DeepNorm layers: (2·11)^(1/4), (8·11)^(−1/4).
  EXPECT_NE(text.find("norms: DEEPNORM encoder alpha=2.16574 beta=0.326497\n"), std::string::npos)
      << text;
}

TEST_F(CkptCommandTest, VerifyPassesThenNamesTheDamagedFileAndTensor) {
  const auto ok = RunPipetrain("ckpt verify " + dir_);
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("ok: "), std::string::npos) << ok.output;

  auto reader = CheckpointReader::Open(dir_);
  ASSERT_TRUE(reader.ok());
  const CheckpointTensor* t = reader->Find("decoder.0.cross_attn.k.weight", PARAM);
  ASSERT_NE(t, nullptr);
  {
    std::fstream f(dir_ + "/step_3/decoder.0.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(t->offset() + 3);
    f.put('\x7f');
  }
  const auto bad = RunPipetrain("ckpt verify " + dir_);
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("decoder.0.bin"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("decoder.0.cross_attn.k.weight (param)"), std::string::npos)
      << bad.output;
}

TEST_F(CkptCommandTest, UsageErrorsAreReported) {
  auto r = RunPipetrain("ckpt");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("usage: pipetrain ckpt"), std::string::npos) << r.output;
  r = RunPipetrain("ckpt frobnicate " + dir_);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("unknown action 'frobnicate'"), std::string::npos) << r.output;
  r = RunPipetrain("ckpt export " + dir_);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  r = RunPipetrain("ckpt verify " + dir_ + "/no_such_step");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no_such_step"), std::string::npos) << r.output;
}

// The header as the format defines it, parsed just enough to check layout.
struct Parsed {
  uint64_t header_size = 0;
  std::string header;
  std::string data;
};

Parsed ParseSafetensors(const std::string& bytes) {
  Parsed p;
  for (int i = 0; i < 8; ++i) {
    p.header_size |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  p.header = bytes.substr(8, p.header_size);
  p.data = bytes.substr(8 + p.header_size);
  return p;
}

TEST_F(CkptCommandTest, ExportWritesSafetensorsInSortedOrderWithExactValues) {
  const std::string out = dir_ + "/model.safetensors";
  const auto r = RunPipetrain("ckpt export " + dir_ + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote " + out), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  auto bytes = ReadFileToString(out);
  ASSERT_TRUE(bytes.ok());
  const Parsed p = ParseSafetensors(*bytes);
  EXPECT_EQ((8 + p.header_size) % 8, 0u);
  ASSERT_EQ(p.header.front(), '{');
  EXPECT_EQ(p.data.size(), static_cast<size_t>(model_->params().total_elements()) * sizeof(float));
  EXPECT_NE(p.header.find("\"__metadata__\":{\"format\":\"pt\",\"pipetrain_step\":\"3\""),
            std::string::npos)
      << p.header.substr(0, 200);
  // Sorted names laid out back to back: the data is each parameter's bytes in
  // name order.
  std::map<std::string, const ParameterInfo*> sorted;
  for (const ParameterInfo& info : model_->params().infos()) sorted[info.name] = &info;
  size_t offset = 0, last_position = 0;
  for (const auto& [name, info] : sorted) {
    const Tensor view = model_->params().flat_params().View(info->offset, info->shape);
    const std::string entry = absl::StrCat("\"", name, "\":{\"dtype\":\"F32\",\"shape\":[");
    const size_t position = p.header.find(entry);
    ASSERT_NE(position, std::string::npos) << name;
    EXPECT_GT(position, last_position) << name << " out of order";
    last_position = position;
    EXPECT_NE(
        p.header.find(absl::StrCat("\"data_offsets\":[", offset, ",", offset + view.nbytes(), "]"),
                      position),
        std::string::npos)
        << name;
    EXPECT_EQ(std::memcmp(p.data.data() + offset, view.raw_data(), view.nbytes()), 0) << name;
    offset += view.nbytes();
  }
  EXPECT_EQ(p.header.find("adam_m"), std::string::npos);  // parameters only
}

TEST_F(CkptCommandTest, ReferenceSafetensorsPackageLoadsTheExport) {
  const auto probe = RunCommand("python3 -c 'import safetensors.numpy, numpy' 2>&1");
  if (probe.exit_code != 0) {
    GTEST_SKIP() << "the Python package safetensors is not importable by python3 (" << probe.output
                 << "); `pip install safetensors numpy` enables this check";
  }
  const std::string out = dir_ + "/model.safetensors";
  auto reader = CheckpointReader::Open(dir_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto exported = ExportSafetensors(*reader, out);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->tensors, static_cast<int64_t>(model_->params().infos().size()));

  const std::string script = "tests/golden/check_safetensors.py";
  const std::string args =
      absl::StrCat(" --count ", model_->params().infos().size(), " --shape embed.weight=32x64",
                   " --shape encoder.0.ffn.fc1.weight=128x64 --shape decoder.1.ffn.fc2.bias=64",
                   " --metadata pipetrain_step=3 --metadata format=pt");
  const auto good = RunCommand("python3 " + script + " " + out + args + " --fnv1a64 " +
                               ExpectedDigest() + " 2>&1");
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("ok: "), std::string::npos) << good.output;
  // The check can fail: a wrong digest or shape is caught.
  const auto wrong = RunCommand("python3 " + script + " " + out + args +
                                " --fnv1a64 0123456789abcdef --shape embed.weight=64x32 2>&1");
  EXPECT_EQ(wrong.exit_code, 1) << wrong.output;
  EXPECT_NE(wrong.output.find("fnv1a64"), std::string::npos) << wrong.output;
  EXPECT_NE(wrong.output.find("embed.weight: shape"), std::string::npos) << wrong.output;
}

}  // namespace
}  // namespace pipetrain
