#include "launcher/train_command.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config/spec_loader.h"
#include "core/io/atomic_file.h"
#include "core/io/event_file_writer.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/corpus_preparation.h"
#include "launcher/pipeline_trainer.h"
#include "launcher/preemption.h"
#include "launcher/trainer.h"
#include "launcher/validation.h"
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
  // Writes a checkpoint into the run directory (collective when distributed).
  std::function<absl::Status(const std::string&)> save;
  // Whether any rank was asked to stop (collective when distributed: every
  // rank must leave the loop after the same step).
  std::function<absl::StatusOr<bool>(bool)> any_rank;
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

// One process's flat parameter buffer, assembled from the blocks `visit`
// gives (collective when distributed). Only a rank that `keeps` it copies
// anything; the others take part in the collective and return nothing.
absl::StatusOr<Tensor> GatherParameters(const TrainerHandle& trainer, bool keep) {
  if (!keep) {
    PT_RETURN_IF_ERROR(trainer.visit([](const Tensor&) {}));
    return Tensor();
  }
  std::vector<char> bytes;
  int64_t total = 0;
  DType dtype = DType::kF32;
  PT_RETURN_IF_ERROR(trainer.visit([&](const Tensor& block) {
    const char* data = static_cast<const char*>(block.raw_data());
    bytes.insert(bytes.end(), data, data + block.nbytes());
    total += block.numel();
    dtype = block.dtype();
  }));
  Tensor flat = Tensor::Empty({total}, dtype);
  std::memcpy(flat.raw_data(), bytes.data(), bytes.size());
  return flat;
}

// The file metrics lines go to: --metrics, else OUTPUT_DIR/metrics.jsonl for
// runs that keep an output directory (a corpus or checkpoints), else none.
std::string MetricsPath(const TrainConfig& train) {
  if (!absl::GetFlag(FLAGS_metrics).empty()) return absl::GetFlag(FLAGS_metrics);
  if (!train.corpus().dir().empty() || train.checkpoint_interval() > 0) {
    return absl::StrCat(train.output_dir(), "/metrics.jsonl");
  }
  return "";
}

// Steps until train.steps, logging progress (and metrics lines) where
// `validator` is given (the printing rank), validating every eval_interval
// steps and checkpointing every checkpoint_interval steps and at the end.
absl::Status RunSteps(const TrainConfig& train, const TrainerHandle& trainer, bool print,
                      Validator* validator) {
  std::ofstream metrics_file;
  BestEffortEventLog events;  // the metrics lines again, for TensorBoard
  const std::string metrics_path = MetricsPath(train);
  if (print && !metrics_path.empty()) {
    std::error_code ignored;
    std::filesystem::create_directories(std::filesystem::path(metrics_path).parent_path(), ignored);
    metrics_file.open(metrics_path, std::ios::app);
    if (!metrics_file) {
      return absl::PermissionDeniedError(absl::StrCat("cannot open the metrics file ", metrics_path,
                                                      " (--metrics or "
                                                      "train.output_dir)"));
    }
    events.Open(ParentDirectory(metrics_path));
  }
  // From here on a signal means: finish the step, checkpoint, leave (data
  // preparation before this point stops at once, as usual).
  InstallPreemptionHandlers();
  const auto start = std::chrono::steady_clock::now();
  const int64_t first_step = trainer.steps_done();
  const int log_interval = std::max(train.log_interval(), 1);
  StepMetrics last;
  int64_t tokens_since_log = 0;
  double seconds_since_log = 0;
  double eval_seconds = 0;  // validation time, kept out of the rate and the ETA
  auto validate = [&](int64_t step) -> absl::Status {
    if (train.corpus().dir().empty()) return absl::OkStatus();  // nothing to validate on
    PT_ASSIGN_OR_RETURN(const Tensor flat, GatherParameters(trainer, validator != nullptr));
    if (validator == nullptr) return absl::OkStatus();
    PT_ASSIGN_OR_RETURN(const ValidationResult result, validator->Run(flat, step));
    eval_seconds += result.seconds;
    LogInfo("valid", "step %d %s", step, result.Summary());
    for (const DirectionScores& d : result.directions) {
      if (d.sentences == 0) continue;  // validated by its loss only
      LogInfo("valid", "  %s-%s: %s => %s (ref: %s)", d.src, d.tgt, d.sample_source,
              d.sample_hypothesis, d.sample_reference);
    }
    if (metrics_file) {
      metrics_file << result.Json(step) << "\n";
      metrics_file.flush();
      ScalarList scalars = {{"valid/loss", result.loss},
                            {"valid/nll", result.nll},
                            {"valid/ppl", std::exp(result.nll)}};
      for (const DirectionScores& d : result.directions) {
        if (d.sentences == 0) continue;
        scalars.push_back({absl::StrCat("valid/bleu/", d.src, "-", d.tgt), d.bleu});
        scalars.push_back({absl::StrCat("valid/chrf/", d.src, "-", d.tgt), d.chrf});
      }
      events.Add(step, scalars);
    }
    return absl::OkStatus();
  };
  while (trainer.steps_done() < train.steps()) {
    PT_ASSIGN_OR_RETURN(last, trainer.step());
    tokens_since_log += last.target_tokens + last.source_tokens;
    seconds_since_log += last.seconds;
    if (last.step % log_interval == 0 || last.step == train.steps()) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta =
          (elapsed - eval_seconds) / (last.step - first_step) * (train.steps() - last.step);
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
        events.Add(last.step, {{"train/loss", last.loss},
                               {"train/nll", last.nll},
                               {"train/lr", last.lr},
                               {"train/grad_norm", last.grad_norm},
                               {"train/tokens_per_s", rate}});
      }
      tokens_since_log = 0;
      seconds_since_log = 0;
    }
    const bool final_step = last.step == train.steps();
    PT_ASSIGN_OR_RETURN(const bool preempted, trainer.any_rank(PreemptionSignal() != 0));
    // The checkpoint first: a validation that fails must not cost the step.
    if (preempted || (train.checkpoint_interval() > 0 &&
                      (last.step % train.checkpoint_interval() == 0 || final_step))) {
      PT_RETURN_IF_ERROR(trainer.save(train.output_dir()));
      if (print) LogInfo("ckpt", "saved step %d in %s", last.step, train.output_dir());
    }
    if (train.eval_interval() > 0 && !preempted &&
        (last.step % train.eval_interval() == 0 || final_step)) {
      PT_RETURN_IF_ERROR(validate(last.step));
    }
    if (preempted && !final_step) {
      MarkStoppedForPreemption();
      return absl::AbortedError(absl::StrCat("preempted by a signal after step ", last.step,
                                             "; checkpoint saved in ", train.output_dir(),
                                             ". Run the same command again to resume (exit status ",
                                             kExitPreempted, ")"));
    }
  }
  PT_ASSIGN_OR_RETURN(const std::string digest, trainer.digest());
  PT_RETURN_IF_ERROR(SaveParams(trainer, print));
  if (print) {
    // A resumed run with no step left has no loss of its own to report.
    const std::string loss =
        last.step > 0 ? absl::StrFormat(" loss=%.6f", last.loss) : " (no step left to run)";
    std::printf("final: step=%lld%s params_digest=%s\n",
                static_cast<long long>(trainer.steps_done()), loss.c_str(), digest.c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

// The checkpoint to continue from, when train.output_dir has one. A
// checkpoint of another model there is an error: continuing would mix runs.
absl::StatusOr<std::optional<CheckpointReader>> FindResumePoint(const RunSpec& spec) {
  const std::string& dir = spec.train().output_dir();
  if (!HasCheckpoint(dir)) return std::nullopt;
  PT_ASSIGN_OR_RETURN(CheckpointReader reader, CheckpointReader::Open(dir));
  const ModelSpec& saved = reader.manifest().spec().model();
  if (saved.SerializeAsString() != spec.model().SerializeAsString()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "train.output_dir ", dir, " holds a checkpoint (", reader.step_dir(),
        ") of a different model; set train.output_dir to a new directory, or delete that one "
        "to start over"));
  }
  if (reader.step() >= spec.train().steps()) {
    LogInfo("train", "%s is at step %d, train.steps=%d: nothing left to train (raise --steps)",
            reader.step_dir(), reader.step(), spec.train().steps());
  }
  return std::optional<CheckpointReader>(std::move(reader));
}

// The dev-set validator for a corpus run with eval_interval > 0, else null.
absl::StatusOr<std::unique_ptr<Validator>> MakeValidator(
    const RunSpec& spec, std::unique_ptr<SentencePieceModel>* vocab) {
  const TrainConfig& train = spec.train();
  if (train.corpus().dir().empty() || train.eval_interval() <= 0) return nullptr;
  PT_ASSIGN_OR_RETURN(SentencePieceModel loaded, SentencePieceModel::Load(CorpusVocabPath(train)));
  *vocab = std::make_unique<SentencePieceModel>(std::move(loaded));
  return Validator::Create(spec.model(), train.corpus().dir(), **vocab,
                           ValidationOptionsFromSpec(spec));
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
  // Whether to resume is decided once, from what every rank sees.
  auto resume = FindResumePoint(spec);
  if (!resume.ok()) return fail(resume.status());
  {
    const double step = resume->has_value() ? static_cast<double>((*resume)->step()) : -1;
    Tensor seen = Tensor::FromVector({step, step * step}, {2}, DType::kF64);
    PT_RETURN_IF_ERROR(world->AllReduceSum(seen));
    // Equal on every rank exactly when size · Σs² = (Σs)².
    if (world->size() * seen.At(1) != seen.At(0) * seen.At(0)) {
      return fail(absl::FailedPreconditionError(
          absl::StrCat("the ranks disagree on the checkpoint to resume from in train.output_dir ",
                       spec.train().output_dir(), " (rank ", world->rank(), " sees ",
                       resume->has_value() ? (*resume)->step_dir() : std::string("none"),
                       "); every rank must see the same directory: use a shared file system and an "
                       "absolute output_dir")));
    }
  }
  if (!spec.train().corpus().dir().empty()) {
    // One rank prepares the data; the others wait for it.
    if (world->rank() == 0) {
      absl::Status prepared = PrepareCorpus(spec);
      if (prepared.ok()) prepared = KeepVocabularyWithRun(spec, resume->has_value());
      if (!prepared.ok()) return fail(prepared);
    }
    PT_RETURN_IF_ERROR(world->Barrier());
  }
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
  const TrainerHandle handle{[&] { return trainer.Step(); },
                             [&] { return trainer.step(); },
                             [&] { return trainer.ParamsDigest(); },
                             [&](const std::function<void(const Tensor&)>& visit) {
                               return trainer.VisitParameters(visit);
                             },
                             [&](const std::string& dir) { return trainer.SaveCheckpoint(dir); },
                             [&](bool mine) { return trainer.AnyRank(mine); }};
  if (resume->has_value()) {
    const absl::Status restored = trainer.RestoreCheckpoint(**resume);
    if (!restored.ok()) return fail(restored);
    LogInfo("train", "resumed from %s (step %d)", (*resume)->step_dir(), trainer.step());
  }
  std::unique_ptr<SentencePieceModel> vocab;
  std::unique_ptr<Validator> validator;
  if (print) {
    auto made = MakeValidator(spec, &vocab);
    if (!made.ok()) return fail(made.status());
    validator = std::move(*made);
  }
  absl::Status status = RunSteps(spec.train(), handle, print, validator.get());
  // Every rank agreed to stop and the checkpoint is complete: leave cleanly.
  if (StoppedForPreemption()) return status;
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
  PT_ASSIGN_OR_RETURN(std::optional<CheckpointReader> resume, FindResumePoint(spec));
  if (!spec.train().corpus().dir().empty()) {
    PT_RETURN_IF_ERROR(PrepareCorpus(spec));
    PT_RETURN_IF_ERROR(KeepVocabularyWithRun(spec, resume.has_value()));
  }
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(spec));
  LogModel(spec, trainer->model().params().total_elements(), "");
  const TrainerHandle handle{
      [&] { return trainer->Step(); },
      [&] { return trainer->step(); },
      [&]() -> absl::StatusOr<std::string> { return trainer->ParamsDigest(); },
      [&](const std::function<void(const Tensor&)>& visit) {
        visit(trainer->model().params().PackedHostParams());
        return absl::OkStatus();
      },
      [&](const std::string& dir) { return trainer->SaveCheckpoint(dir).status(); },
      [](bool mine) -> absl::StatusOr<bool> { return mine; }};
  if (resume.has_value()) {
    PT_RETURN_IF_ERROR(trainer->RestoreCheckpoint(*resume));
    LogInfo("train", "resumed from %s (step %d)", resume->step_dir(), trainer->step());
  }
  std::unique_ptr<SentencePieceModel> vocab;
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Validator> validator, MakeValidator(spec, &vocab));
  return RunSteps(spec.train(), handle, /*print=*/true, validator.get());
}

}  // namespace pipetrain
