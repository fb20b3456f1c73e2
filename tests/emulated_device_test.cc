// The emulated device (DESIGN.md decision 10): host memory treated exactly as
// GPU memory. These tests show that it is strict (a host read of its memory
// ends the process, naming the reader), that the CPU kernels computing on it
// give the CPU's bits, that the trainer and its checkpoints work on it, and
// that a training step reads the device from the host a fixed number of
// times, whatever the depth.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/config/spec_loader.h"
#include "core/device.h"
#include "core/ops/cross_entropy.h"
#include "core/ops/linear.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launcher/trainer/trainer.h"
#include "models/checkpoint.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;

Tensor Ramp(const Shape& shape, double scale) {
  std::vector<double> values(NumElements(shape));
  for (size_t i = 0; i < values.size(); ++i) values[i] = scale * ((i * 37 % 17) - 8.0);
  return Tensor::FromVector(values, shape, DType::kF32);
}

std::vector<uint8_t> Bytes(const Tensor& host) {
  const auto* p = static_cast<const uint8_t*>(host.raw_data());
  return std::vector<uint8_t>(p, p + host.nbytes());
}

TEST(EmulatedDeviceDeathTest, HostReadOfDeviceMemoryNamesTheCaller) {
  const Tensor t = Ramp({4}, 1.0).CopyTo(Device::kEmulated);
  EXPECT_DEATH((void)t.data<float>(), "emulated_device_test.cc:[0-9]+.*emulated-device tensor");
  EXPECT_DEATH((void)t.raw_data(), "copy to the host first");
}

TEST(EmulatedDeviceTest, DataCrossesOnlyThroughTheCopyApiAndIsCounted) {
  const Tensor host = Ramp({3, 5}, 0.25);
  absl::StatusOr<Tensor> device = CopyToDevice(host, Device::kEmulated);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->device(), Device::kEmulated);
  const CopyCounts before = DeviceToHostCopies();
  absl::StatusOr<Tensor> back = CopyToDevice(*device, Device::kCpu);
  ASSERT_TRUE(back.ok()) << back.status();
  const Tensor again = device->CopyTo(Device::kCpu);
  const CopyCounts after = DeviceToHostCopies();
  EXPECT_EQ(after.copies - before.copies, 2);
  EXPECT_EQ(after.bytes - before.bytes, 2 * static_cast<int64_t>(host.nbytes()));
  EXPECT_EQ(Bytes(*back), Bytes(host));
  EXPECT_EQ(Bytes(again), Bytes(host));
  // Staying on the device costs no host copy.
  const CopyCounts start = DeviceToHostCopies();
  Tensor clone = device->Clone();
  clone.Zero();
  Tensor other = Tensor::Empty(host.shape(), host.dtype(), Device::kEmulated);
  ASSERT_TRUE(CopyTensor(*device, other).ok());
  EXPECT_EQ(DeviceToHostCopies().copies, start.copies);
}

TEST(EmulatedDeviceTest, OpsRunTheCpuKernelsAndKeepTheirOutputsOnTheDevice) {
  const Tensor x = Ramp({6, 8}, 0.1), w = Ramp({4, 8}, 0.05), b = Ramp({4}, 0.3);
  absl::StatusOr<Tensor> cpu = ops::LinearForward(x, w, &b);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  const Tensor dx = x.CopyTo(Device::kEmulated), dw = w.CopyTo(Device::kEmulated),
               db = b.CopyTo(Device::kEmulated);
  absl::StatusOr<Tensor> emulated = ops::LinearForward(dx, dw, &db);
  ASSERT_TRUE(emulated.ok()) << emulated.status();
  EXPECT_EQ(emulated->device(), Device::kEmulated);
  EXPECT_EQ(Bytes(emulated->CopyTo(Device::kCpu)), Bytes(*cpu));
  // Mixing devices is refused, as on a GPU.
  absl::StatusOr<Tensor> mixed = ops::LinearForward(dx, w, &db);
  EXPECT_FALSE(mixed.ok());
  EXPECT_THAT(mixed.status().message(), HasSubstr("emulated"));
}

TEST(EmulatedDeviceTest, LossSumsLeftOnTheDeviceReadBackAsTheHostSumsThem) {
  const Tensor logits = Ramp({5, 7}, 0.3);
  const Tensor targets = Tensor::FromInts({3, 0, 6, 0, 1}, {5});  // 0: ignored (pad)
  absl::StatusOr<ops::CrossEntropyStats> host =
      ops::CrossEntropyForward(logits, targets, 0.1, 0, nullptr);
  ASSERT_TRUE(host.ok()) << host.status();
  std::vector<ops::CrossEntropyStats> kept;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ops::CrossEntropyStats> on_device = ops::CrossEntropyForward(
        logits.CopyTo(Device::kEmulated), targets.CopyTo(Device::kEmulated), 0.1, 0, nullptr,
        /*sums_on_device=*/true);
    ASSERT_TRUE(on_device.ok()) << on_device.status();
    ASSERT_TRUE(on_device->rows.defined());
    EXPECT_EQ(on_device->rows.device(), Device::kEmulated);
    kept.push_back(*on_device);
  }
  const int64_t before = DeviceToHostCopies().copies;
  ASSERT_TRUE(ops::ReadCrossEntropySums({&kept[0], &kept[1]}).ok());
  EXPECT_EQ(DeviceToHostCopies().copies - before, 1);  // both in one read
  for (const ops::CrossEntropyStats& s : kept) {
    EXPECT_EQ(s.loss_sum, host->loss_sum);  // bitwise: the same additions
    EXPECT_EQ(s.nll_sum, host->nll_sum);
    EXPECT_EQ(s.tokens, 3);
  }
}

RunSpec TinySpec(const std::vector<std::string>& overrides) {
  absl::StatusOr<RunSpec> spec =
      LoadRunSpec(std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt", "", overrides);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

std::string DigestAfter(const RunSpec& spec, int steps) {
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(spec);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  if (!trainer.ok()) return "";
  for (int i = 0; i < steps; ++i) {
    absl::StatusOr<StepMetrics> m = (*trainer)->Step();
    EXPECT_TRUE(m.ok()) << m.status();
  }
  absl::StatusOr<std::string> digest = (*trainer)->ParamsDigest();
  EXPECT_TRUE(digest.ok()) << digest.status();
  return digest.ok() ? *digest : "";
}

const std::vector<std::string> kDropout = {"train.microbatches=2", "model.attention_dropout=0.1",
                                           "model.activation_dropout=0.1",
                                           "model.residual_dropout=0.1"};

std::vector<std::string> With(std::vector<std::string> base, const std::string& extra) {
  base.push_back(extra);
  return base;
}

TEST(EmulatedTrainerTest, TrainsBitForBitLikeTheCpu) {
  const std::string cpu = DigestAfter(TinySpec(kDropout), 3);
  const std::string emulated = DigestAfter(TinySpec(With(kDropout, "train.device=emulated")), 3);
  ASSERT_THAT(cpu, ::testing::MatchesRegex("[0-9a-f]{16}"));
  EXPECT_EQ(emulated, cpu);
}

// The bug this would have caught: a GPU run died at its first checkpoint
// (device tensors refused by the writer, host moments expected on resume).
TEST(EmulatedTrainerTest, CheckpointSavesFromTheDeviceAndResumesOntoIt) {
  const std::string dir = ::testing::TempDir() + "/emulated_ckpt";
  std::filesystem::remove_all(dir);
  const RunSpec spec = TinySpec(With(kDropout, "train.device=emulated"));
  const std::string straight = DigestAfter(spec, 4);
  {
    auto first = Trainer::Create(spec);
    ASSERT_TRUE(first.ok()) << first.status();
    for (int i = 0; i < 2; ++i) ASSERT_TRUE((*first)->Step().ok());
    ASSERT_TRUE((*first)->SaveCheckpoint(dir).ok());
  }
  absl::StatusOr<CheckpointReader> reader = CheckpointReader::Open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(VerifyCheckpoint(*reader).ok());
  auto second = Trainer::Create(spec);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE((*second)->RestoreCheckpoint(*reader).ok());
  EXPECT_EQ((*second)->step(), 2);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*second)->Step().ok());
  EXPECT_EQ(*(*second)->ParamsDigest(), straight);

  // The same checkpoint loads on the CPU: placement and device are free.
  auto on_cpu = Trainer::Create(TinySpec(kDropout));
  ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
  ASSERT_TRUE((*on_cpu)->RestoreCheckpoint(*reader).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*on_cpu)->Step().ok());
  EXPECT_EQ(*(*on_cpu)->ParamsDigest(), straight);
}

struct StepCopies {
  int64_t to_host = 0;
  int64_t to_device = 0;
};

// Host reads of device memory and uploads during one optimizer step (after a
// first, warm-up step): a few per micro-batch and per chunk, none per layer.
StepCopies CopiesPerStep(int layers_per_stack) {
  const std::string n = std::to_string(layers_per_stack);
  auto trainer = Trainer::Create(TinySpec(
      {"train.device=emulated", "train.microbatches=2", "model.encoder_layers=" + n,
       "model.decoder_layers=" + n, "model.d_model=32", "model.ffn_dim=32", "model.heads=2"}));
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  if (!trainer.ok()) return {};
  EXPECT_TRUE((*trainer)->Step().ok());
  const int64_t reads = DeviceToHostCopies().copies;
  const int64_t uploads = HostToDeviceCopies().copies;
  EXPECT_TRUE((*trainer)->Step().ok());
  return {DeviceToHostCopies().copies - reads, HostToDeviceCopies().copies - uploads};
}

TEST(EmulatedTrainerTest, AStepCopiesBetweenHostAndDeviceAFixedNumberOfTimesWhateverTheDepth) {
  const StepCopies shallow = CopiesPerStep(3);
  const StepCopies deep = CopiesPerStep(24);
  // Reads: one for the loss sums of all micro-batches, one for the gradient
  // norm's per-parameter sums of all chunks, one for the update's dry run
  // (how many elements it would make non-finite, all chunks together).
  EXPECT_EQ(shallow.to_host, 3);
  EXPECT_EQ(deep.to_host, shallow.to_host);
  // Uploads: the batch (source and target ids, labels, both lengths) once per
  // micro-batch; no layer uploads its key lengths again.
  EXPECT_EQ(shallow.to_device, 2 * 5);
  EXPECT_EQ(deep.to_device, shallow.to_device);
}

}  // namespace
}  // namespace pipetrain
