// Parameter-registration benchmark: the wall time of building a model stage
// of N + N layers and of 4N + 4N layers, as narrow as a spec allows (d = 2),
// so the time is registration (names, the parameter index, offsets) and not
// arithmetic. Prints ONE JSON line: both times, their ratio (about 4 when
// registration is linear in layers, 16 when quadratic) and the name
// comparisons the store made (ParameterStore::name_comparisons).
//
//   param_registration_bench [--layers 2000]
//
// Issue 13 §7 measured the quadratic store at 17 s for 2000 + 2000 layers and
// over 180 s for 65,536; tests/parameter_store_test.cc guards the count.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/config/spec_loader.h"
#include "models/model_stage.h"

ABSL_FLAG(int32_t, layers, 2000, "layers per stack of the smaller model (the larger has 4x)");

namespace {

struct Built {
  double seconds = 0;
  int64_t parameters = 0;
  int64_t comparisons = 0;
};

Built Build(int layers) {
  pipetrain::RunSpec spec;
  pipetrain::ModelSpec& m = *spec.mutable_model();
  m.set_kind(pipetrain::ENCODER_DECODER);
  m.set_vocab_size(8);
  m.set_d_model(2);
  m.set_ffn_dim(2);
  m.set_heads(1);
  m.set_encoder_layers(layers);
  m.set_decoder_layers(layers);
  m.set_norm(pipetrain::PRE_LN);
  pipetrain::ApplyDefaults(&spec);
  const auto start = std::chrono::steady_clock::now();
  auto stage =
      pipetrain::ModelStage::Create(spec.model(), pipetrain::DType::kF32, 1, 0, 2 * layers);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!stage.ok()) {
    std::fprintf(stderr, "param_registration_bench: %s\n", stage.status().ToString().c_str());
    std::exit(1);
  }
  return Built{seconds, static_cast<int64_t>((*stage)->params().infos().size()),
               (*stage)->params().name_comparisons()};
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int layers = absl::GetFlag(FLAGS_layers);
  if (layers < 1 || layers > (1 << 14)) {
    std::fprintf(stderr, "param_registration_bench: --layers must be in 1..16384\n");
    return 1;
  }
  const Built small = Build(layers);
  const Built large = Build(4 * layers);
  std::printf(
      "{\"bench\":\"param_registration\",\"layers\":%d,\"seconds\":%.4f,\"parameters\":%lld,"
      "\"layers_4x\":%d,\"seconds_4x\":%.4f,\"parameters_4x\":%lld,\"ratio\":%.2f,"
      "\"name_comparisons_4x\":%lld}\n",
      2 * layers, small.seconds, static_cast<long long>(small.parameters), 8 * layers,
      large.seconds, static_cast<long long>(large.parameters),
      large.seconds / (small.seconds > 0 ? small.seconds : 1e-9),
      static_cast<long long>(large.comparisons));
  return 0;
}
