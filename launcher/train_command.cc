#include "launcher/train_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config/spec_loader.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/pipeline_trainer.h"
#include "launcher/trainer.h"
#include "parallel/mpi_communicator.h"
#include "parallel/topology.h"

ABSL_FLAG(std::string, spec, "", "Model spec (protobuf text format): model {...} and train {...}");
ABSL_FLAG(std::string, config, "",
          "Optional training-config file (TrainConfig text); replaces the spec's train fields");
ABSL_FLAG(int64_t, steps, -1, "Optimizer steps to run (overrides train.steps)");
ABSL_FLAG(int64_t, seed, -1, "Random seed (overrides train.seed)");
ABSL_FLAG(std::string, metrics, "", "Append one JSON line per logged step to this file");
ABSL_FLAG(std::string, save_params, "",
          "At the end, write every parameter in layer order as raw values of the run's dtype "
          "(one process's flat buffer, whatever the parallel layout) to this file");

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

namespace {

// What the step loop needs from either trainer.
struct TrainerHandle {
  std::function<absl::StatusOr<StepMetrics>()> step;
  std::function<int64_t()> steps_done;
  std::function<absl::StatusOr<std::string>()> digest;
  // Every parameter block in layer order (collective when distributed).
  std::function<absl::Status(const std::function<void(const Tensor&)>&)> visit;
};

absl::Status SaveParams(const TrainerHandle& trainer, bool write) {
  const std::string path = absl::GetFlag(FLAGS_save_params);
  if (path.empty()) return absl::OkStatus();
  std::ofstream out;
  if (write) {
    out.open(path, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write --save_params ", path));
  }
  PT_RETURN_IF_ERROR(trainer.visit([&](const Tensor& block) {
    if (write) out.write(static_cast<const char*>(block.raw_data()), block.nbytes());
  }));
  if (write && !out) return absl::DataLossError(absl::StrCat("failed writing ", path));
  return absl::OkStatus();
}

// Steps until train.steps, logging progress (and metrics lines) where `print`.
absl::Status RunSteps(const TrainConfig& train, const TrainerHandle& trainer, bool print) {
  std::ofstream metrics_file;
  if (print && !absl::GetFlag(FLAGS_metrics).empty()) {
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
  while (trainer.steps_done() < train.steps()) {
    PT_ASSIGN_OR_RETURN(last, trainer.step());
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
  PT_ASSIGN_OR_RETURN(const std::string digest, trainer.digest());
  PT_RETURN_IF_ERROR(SaveParams(trainer, print));
  if (print) {
    std::printf("final: step=%lld loss=%.6f params_digest=%s\n",
                static_cast<long long>(trainer.steps_done()), last.loss, digest.c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

void LogModel(const RunSpec& spec, int64_t parameters, const std::string& where) {
  LogInfo("train", "model %s: %s, %d+%d layers, d=%d, ffn=%d, heads=%d, %s, %d parameters%s (%s)",
          spec.model().name(), ModelKind_Name(spec.model().kind()), spec.model().encoder_layers(),
          spec.model().decoder_layers(), spec.model().d_model(), spec.model().ffn_dim(),
          spec.model().heads(), ResidualNorm_Name(spec.model().norm()), parameters, where,
          spec.train().dtype());
}

// Pipeline and/or data parallel over MPI. A failure on one rank aborts the
// job with its message: returning would leave the other ranks waiting.
absl::Status RunDistributed(const RunSpec& spec) {
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> world, MpiCommunicator::World());
  auto fail = [&](const absl::Status& status) -> absl::Status {
    if (world->size() > 1) world->Abort(std::string(status.message()));
    return status;
  };
  auto created = PipelineTrainer::Create(spec, *world);
  if (!created.ok()) return fail(created.status());
  PipelineTrainer& trainer = **created;
  if (world->size() > 1) SetLogIdentity(trainer.topology().Identity());
  const bool print = world->rank() == 0;
  if (!print) SetLogVerbose(false);
  const std::vector<int>& bounds = trainer.bounds();
  std::string layout;
  for (size_t vs = 0; vs + 1 < bounds.size(); ++vs) {
    absl::StrAppend(&layout, vs == 0 ? "" : " ", "[", bounds[vs], ",", bounds[vs + 1], ")");
  }
  LogInfo("train",
          "pipeline: %d stages x %d chunks (%s, %s), %d replicas; layers per virtual "
          "stage: %s",
          trainer.topology().pipeline_stages, spec.train().pipeline().chunks(),
          spec.train().pipeline().schedule(), spec.train().pipeline().partition(),
          trainer.topology().data_parallel, layout);
  LogModel(spec, trainer.parameters(), " on this rank");
  const TrainerHandle handle{[&] { return trainer.Step(); }, [&] { return trainer.step(); },
                             [&] { return trainer.ParamsDigest(); },
                             [&](const std::function<void(const Tensor&)>& visit) {
                               return trainer.VisitParameters(visit);
                             }};
  absl::Status status = RunSteps(spec.train(), handle, print);
  if (!status.ok()) return fail(status);
  // The activations each stage held at most, against the schedule simulator's
  // prediction (in micro-batches × chunks; the last step's).
  auto report = trainer.PeakLiveReport();
  if (!report.ok()) return fail(report.status());
  LogInfo("train", "peak live activations by stage: %s", *report);
  return absl::OkStatus();
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
  // The resolved spec (file, --config, --set and defaults together), so a log
  // says exactly what ran.
  LogInfo("train", "resolved spec: %s", spec.ShortDebugString());
  PT_ASSIGN_OR_RETURN(const ProcessEnvironment env, DetectEnvironment());
  if (env.launcher != Launcher::kNone || spec.train().pipeline().stages() > 1 ||
      spec.train().data_parallel() > 1) {
    return RunDistributed(spec);
  }
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(spec));
  LogModel(spec, trainer->model().params().total_elements(), "");
  const TrainerHandle handle{
      [&] { return trainer->Step(); }, [&] { return trainer->step(); },
      [&]() -> absl::StatusOr<std::string> { return trainer->ParamsDigest(); },
      [&](const std::function<void(const Tensor&)>& visit) {
        visit(trainer->model().params().flat_params());
        return absl::OkStatus();
      }};
  return RunSteps(spec.train(), handle, /*print=*/true);
}

}  // namespace pipetrain
