#include "launcher/train_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config/spec_loader.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/trainer.h"

ABSL_FLAG(std::string, spec, "", "Model spec (protobuf text format): model {...} and train {...}");
ABSL_FLAG(std::string, config, "",
          "Optional training-config file (TrainConfig text); replaces the spec's train fields");
ABSL_FLAG(int64_t, steps, -1, "Optimizer steps to run (overrides train.steps)");
ABSL_FLAG(int64_t, seed, -1, "Random seed (overrides train.seed)");
ABSL_FLAG(std::string, metrics, "", "Append one JSON line per logged step to this file");

namespace pipetrain {
namespace {

std::string FormatDuration(double seconds) {
  if (seconds < 60) return absl::StrFormat("%.0fs", seconds);
  if (seconds < 3600)
    return absl::StrFormat("%dm%02ds", static_cast<int>(seconds) / 60,
                           static_cast<int>(seconds) % 60);
  return absl::StrFormat("%dh%02dm", static_cast<int>(seconds) / 3600,
                         (static_cast<int>(seconds) % 3600) / 60);
}

}  // namespace

absl::Status RunTrainCommand(const std::vector<std::string>& overrides_in) {
  const std::string spec_path = absl::GetFlag(FLAGS_spec);
  if (spec_path.empty()) {
    return absl::InvalidArgumentError(
        "train needs --spec FILE, e.g. pipetrain train --spec configs/tiny.pbtxt");
  }
  std::vector<std::string> overrides = overrides_in;
  if (absl::GetFlag(FLAGS_steps) >= 0) {
    overrides.push_back(absl::StrCat("train.steps=", absl::GetFlag(FLAGS_steps)));
  }
  if (absl::GetFlag(FLAGS_seed) >= 0) {
    overrides.push_back(absl::StrCat("train.seed=", absl::GetFlag(FLAGS_seed)));
  }
  PT_ASSIGN_OR_RETURN(RunSpec spec, LoadRunSpec(spec_path, absl::GetFlag(FLAGS_config), overrides));
  const TrainConfig& train = spec.train();
  // The resolved spec (file, --config, --set and defaults together), so a log
  // says exactly what ran.
  LogInfo("train", "resolved spec: %s", spec.ShortDebugString());
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(spec));
  LogInfo("train", "model %s: %s, %d+%d layers, d=%d, ffn=%d, heads=%d, %s, %d parameters (%s)",
          spec.model().name(), ModelKind_Name(spec.model().kind()), spec.model().encoder_layers(),
          spec.model().decoder_layers(), spec.model().d_model(), spec.model().ffn_dim(),
          spec.model().heads(), ResidualNorm_Name(spec.model().norm()),
          trainer->model().params().total_elements(), train.dtype());

  std::ofstream metrics_file;
  if (!absl::GetFlag(FLAGS_metrics).empty()) {
    metrics_file.open(absl::GetFlag(FLAGS_metrics), std::ios::app);
    if (!metrics_file) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot open --metrics file ", absl::GetFlag(FLAGS_metrics)));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const int log_interval = std::max(train.log_interval(), 1);
  StepMetrics last;
  int64_t tokens_since_log = 0;
  double seconds_since_log = 0;
  while (trainer->step() < train.steps()) {
    PT_ASSIGN_OR_RETURN(last, trainer->Step());
    tokens_since_log += last.target_tokens + last.source_tokens;
    seconds_since_log += last.seconds;
    if (last.step % log_interval == 0 || last.step == train.steps()) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta = elapsed / last.step * (train.steps() - last.step);
      const double rate = tokens_since_log / std::max(seconds_since_log, 1e-9);
      LogInfo("train", "step %d/%d loss=%.4f nll=%.4f lr=%.3e gnorm=%.3f tok/s=%.0f eta=%s",
              last.step, train.steps(), last.loss, last.nll, last.lr, last.grad_norm, rate,
              FormatDuration(eta));
      if (metrics_file) {
        metrics_file << absl::StrFormat(
            "{\"step\":%d,\"loss\":%.6f,\"nll\":%.6f,\"lr\":%.6e,\"grad_norm\":%.6f,"
            "\"tokens_per_s\":%.1f,\"target_tokens\":%d,\"elapsed_s\":%.3f}\n",
            last.step, last.loss, last.nll, last.lr, last.grad_norm, rate, last.target_tokens,
            elapsed);
        metrics_file.flush();
      }
      tokens_since_log = 0;
      seconds_since_log = 0;
    }
  }
  std::printf("final: step=%lld loss=%.6f params_digest=%s\n",
              static_cast<long long>(trainer->step()), last.loss, trainer->ParamsDigest().c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace pipetrain
