// GPU layer-stack benchmark: forward, input-gradient and weight-gradient
// passes of a stack of Transformer layers on the GPU, on random activations,
// and ONE JSON line with tokens/s, step time, model TFLOP/s, MFU against the
// H100's 989 dense bf16 TFLOP/s, and peak device memory.
//
//   gpu_layer_bench [--layers 12] [--d 1024] [--ffn 4096] [--heads 16] [--seq 128]
//                   [--batch 64] [--norm DEEPNORM] [--decoder] [--warmup 2] [--steps 10]
//
// It measures the CUDA ops composed into layers (the first number a GPU
// session should take). It is not yet the whole-model comparison with
// peers/torch_deepnorm.py: the trainer does not run on the GPU yet, and the
// parameters are f32 (bf16 compute copies are owed), so "dtype" says f32.
// Exits 2 with a message where no GPU can be used.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/device.h"
#include "core/gpu_runtime.h"
#include "core/philox.h"
#include "models/transformer_layer.h"

ABSL_FLAG(int32_t, layers, 12, "Layers in the stack");
ABSL_FLAG(int32_t, d, 1024, "Model width");
ABSL_FLAG(int32_t, ffn, 4096, "FFN width");
ABSL_FLAG(int32_t, heads, 16, "Attention heads");
ABSL_FLAG(int32_t, seq, 128, "Tokens per sentence");
ABSL_FLAG(int32_t, batch, 64, "Sentences per step");
ABSL_FLAG(std::string, norm, "DEEPNORM", "Residual normalisation (ResidualNorm name)");
ABSL_FLAG(bool, decoder, false, "Decoder layers (causal self-attention + cross-attention)");
ABSL_FLAG(int32_t, warmup, 2, "Untimed steps");
ABSL_FLAG(int32_t, steps, 10, "Timed steps");

namespace pipetrain {
namespace {

constexpr double kPeakFlops = 989e12;  // H100 SXM dense bf16

// N(0, 1) values keyed by `seed`, as an f32 tensor on the GPU.
Tensor RandomOnGpu(const Shape& shape, uint64_t seed) {
  Tensor host = Tensor::Empty(shape, DType::kF32);
  const PhiloxStream stream(RngKey{.seed = seed});
  for (int64_t i = 0; i < host.numel(); ++i) {
    host.data<float>()[i] = static_cast<float>(stream.Normal(static_cast<uint64_t>(i)));
  }
  return host.CopyTo(Device::kCuda);
}

struct Result {
  double step_ms = 0;
  size_t peak_bytes = 0;
};

absl::StatusOr<Result> Run() {
  const int layers = absl::GetFlag(FLAGS_layers);
  const int64_t d = absl::GetFlag(FLAGS_d), b = absl::GetFlag(FLAGS_batch),
                t = absl::GetFlag(FLAGS_seq);
  ResidualNorm norm;
  if (!ResidualNorm_Parse(absl::GetFlag(FLAGS_norm), &norm)) {
    return absl::InvalidArgumentError("--norm: unknown normalisation " + absl::GetFlag(FLAGS_norm));
  }
  ParameterStore store(DType::kF32, Device::kCuda);
  std::vector<std::unique_ptr<TransformerLayer>> stack;
  for (int i = 0; i < layers; ++i) {
    LayerConfig config;
    config.d_model = static_cast<int>(d);
    config.ffn_dim = absl::GetFlag(FLAGS_ffn);
    config.heads = absl::GetFlag(FLAGS_heads);
    config.norm = norm;
    config.causal = config.cross = absl::GetFlag(FLAGS_decoder);
    config.index = i;
    stack.push_back(
        std::make_unique<TransformerLayer>(store, absl::StrFormat("layer.%d", i), config));
  }
  store.Finalize();
  store.Initialize(1);
  const bool decoder = absl::GetFlag(FLAGS_decoder);
  const Tensor x = RandomOnGpu({b, t, d}, 2);
  const Tensor memory = decoder ? RandomOnGpu({b, t, d}, 4) : Tensor();
  const Tensor lengths = Tensor::FromInts(std::vector<int32_t>(b, static_cast<int32_t>(t)), {b});
  const Tensor memory_lengths = decoder ? lengths : Tensor();
  const Tensor dy = RandomOnGpu({b, t, d}, 3);

  auto step = [&](int64_t index) -> absl::Status {
    const StepContext ctx{.seed = 1, .step = index, .microbatch = 0, .training = true};
    std::vector<LayerSaved> saved(layers);
    Tensor h = x;
    for (int i = 0; i < layers; ++i) {
      absl::StatusOr<Tensor> y =
          stack[i]->Forward(ctx, h, lengths, memory, memory_lengths, &saved[i]);
      if (!y.ok()) return y.status();
      h = *y;
    }
    Tensor g = dy;
    for (int i = layers - 1; i >= 0; --i) {
      Tensor dmemory;
      absl::StatusOr<Tensor> dx = stack[i]->BackwardInput(ctx, &saved[i], g, &dmemory);
      if (!dx.ok()) return dx.status();
      absl::Status w = stack[i]->BackwardWeight(&saved[i]);
      if (!w.ok()) return w;
      g = *dx;
    }
    return SynchronizeDevice();
  };
  for (int i = 0; i < absl::GetFlag(FLAGS_warmup); ++i) {
    absl::Status s = step(i);
    if (!s.ok()) return s;
  }
  ResetDevicePeakMemory();
  const auto start = std::chrono::steady_clock::now();
  const int steps = absl::GetFlag(FLAGS_steps);
  for (int i = 0; i < steps; ++i) {
    absl::Status s = step(100 + i);
    if (!s.ok()) return s;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Result{1e3 * seconds / steps, DeviceMemoryStats().peak_allocated_bytes};
}

// Multiply-adds ×2 of one layer's forward for one token: the projections
// (4·d² for attention, 2·d·ffn for the FFN, 4·d² more for cross-attention)
// and the two attention products over `seq` keys. Training is 3× forward.
double ForwardFlopsPerToken(int64_t d, int64_t ffn, int64_t seq, bool decoder) {
  double flops = 2.0 * (4.0 * d * d + 2.0 * d * ffn) + 2.0 * 2.0 * seq * d;
  if (decoder) flops += 2.0 * 4.0 * d * d + 2.0 * 2.0 * seq * d;
  return flops;
}

}  // namespace
}  // namespace pipetrain

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string why;
  if (pipetrain::CudaDeviceCount(&why) == 0) {
    std::fprintf(stderr, "gpu_layer_bench: no GPU: %s\n", why.c_str());
    return 2;
  }
  absl::StatusOr<pipetrain::Result> r = pipetrain::Run();
  if (!r.ok()) {
    std::fprintf(stderr, "gpu_layer_bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  const int64_t d = absl::GetFlag(FLAGS_d), ffn = absl::GetFlag(FLAGS_ffn),
                t = absl::GetFlag(FLAGS_seq), b = absl::GetFlag(FLAGS_batch);
  const int layers = absl::GetFlag(FLAGS_layers);
  const bool decoder = absl::GetFlag(FLAGS_decoder);
  const double tokens = static_cast<double>(b * t);
  const double flops = 3.0 * layers * tokens * pipetrain::ForwardFlopsPerToken(d, ffn, t, decoder);
  const double tflops = flops / (r->step_ms * 1e-3) / 1e12;
  std::printf(
      "{\"bench\":\"gpu_layer_bench\",\"dtype\":\"f32\",\"norm\":\"%s\",\"decoder\":%s,"
      "\"layers\":%d,\"d\":%lld,\"ffn\":%lld,\"heads\":%d,\"seq\":%lld,\"batch\":%lld,"
      "\"step_ms\":%.3f,\"tokens_per_s\":%.0f,\"model_tflops\":%.2f,\"mfu\":%.4f,"
      "\"peak_gpu_mib\":%.1f}\n",
      absl::GetFlag(FLAGS_norm).c_str(), decoder ? "true" : "false", layers,
      static_cast<long long>(d), static_cast<long long>(ffn), absl::GetFlag(FLAGS_heads),
      static_cast<long long>(t), static_cast<long long>(b), r->step_ms,
      tokens / (r->step_ms * 1e-3), tflops, tflops * 1e12 / pipetrain::kPeakFlops,
      r->peak_bytes / 1048576.0);
  return 0;
}
