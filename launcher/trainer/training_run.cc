#include "launcher/trainer/training_run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/config/enum_spelling.h"
#include "core/io/atomic_file.h"
#include "core/io/event_file_writer.h"
#include "core/status_macros.h"
#include "core/util/host_memory.h"
#include "core/util/log.h"
#include "launcher/trainer/corpus_preparation.h"
#include "launcher/trainer/divergence.h"
#include "launcher/trainer/early_update.h"
#include "launcher/trainer/preemption.h"
#include "launcher/trainer/rank_agreement.h"
#include "launcher/trainer/resume_point.h"
#include "launcher/trainer/trainer.h"
#include "launcher/trainer/validation.h"
#include "models/norm_constants.h"
#include "parallel/comm_watchdog.h"
#include "parallel/local_communicator.h"
#include "parallel/mpi_communicator.h"
#include "parallel/topology.h"

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

// Writes every parameter in layer order to `path` (nothing when empty).
// Collective: every rank takes part; only a rank that `write`s opens the file.
absl::Status SaveParams(const std::string& path, Trainer& trainer, bool write) {
  if (path.empty()) return absl::OkStatus();
  std::ofstream out;
  if (write) {
    out.open(path, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write --save_params ", path));
  }
  PT_RETURN_IF_ERROR(trainer.VisitParameters([&](const Tensor& block) {
    if (write) out.write(static_cast<const char*>(block.raw_data()), block.nbytes());
  }));
  if (write && !out) return absl::DataLossError(absl::StrCat("failed writing ", path));
  return absl::OkStatus();
}

// A number for a JSON line: JSON has no NaN or infinity, so a value that is
// not finite is written as null (a skipped step's loss can be NaN).
std::string JsonNumber(double value) {
  return std::isfinite(value) ? absl::StrFormat("%.17g", value) : std::string("null");
}

// The file metrics lines go to: --metrics, else OUTPUT_DIR/metrics.jsonl for
// runs that keep an output directory (a corpus or checkpoints), else none.
std::string MetricsPath(const TrainConfig& train, const TrainingOutputs& outputs) {
  if (!outputs.metrics_path.empty()) return outputs.metrics_path;
  if (!train.corpus().dir().empty() || train.checkpoint_interval() > 0) {
    return absl::StrCat(train.output_dir(), "/metrics.jsonl");
  }
  return "";
}

// Steps until train.steps, logging progress (and metrics lines) where
// `validator` is given (the printing rank), validating every eval_interval
// steps and checkpointing every checkpoint_interval steps and at the end.
// Over the first train.early_update_steps steps every rank gathers the
// parameters to the printing rank, where `early_update` measures them (and
// is freed after the last of them: it holds a whole model).
absl::Status RunSteps(const TrainConfig& train, const TrainingOutputs& outputs, Trainer& trainer,
                      bool print, Validator* validator,
                      std::unique_ptr<EarlyUpdateProbe> early_update) {
  std::ofstream metrics_file;
  BestEffortEventLog events;  // the metrics lines again, for TensorBoard
  const std::string metrics_path = MetricsPath(train, outputs);
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
  const int64_t first_step = trainer.step();
  const int log_interval = std::max(train.log_interval(), 1);
  StepMetrics last;
  int64_t tokens_since_log = 0;
  double seconds_since_log = 0;
  double eval_seconds = 0;  // validation time, kept out of the rate and the ETA
  auto validate = [&](int64_t step) -> absl::Status {
    if (train.corpus().dir().empty()) return absl::OkStatus();  // nothing to validate on
    PT_ASSIGN_OR_RETURN(const Tensor flat, trainer.GatherParameters(validator != nullptr));
    if (validator == nullptr) return absl::OkStatus();
    PT_ASSIGN_OR_RETURN(const ValidationResult result, validator->Run(flat, step));
    eval_seconds += result.seconds;
    LogInfo("valid", "step %d %s", step, result.Summary());
    const std::string groups = result.GroupSummary();
    if (!groups.empty()) LogInfo("valid", "step %d groups: %s", step, groups);
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
      for (const GroupScores& g : result.Groups()) {
        scalars.push_back({absl::StrCat("valid/bleu/", g.name), g.bleu});
        scalars.push_back({absl::StrCat("valid/chrf/", g.name), g.chrf});
      }
      events.Add(step, scalars);
    }
    return absl::OkStatus();
  };
  auto measure_early_update = [&]() -> absl::Status {
    const auto measure_start = std::chrono::steady_clock::now();
    PT_ASSIGN_OR_RETURN(const Tensor flat, trainer.GatherParameters(early_update != nullptr));
    if (early_update != nullptr) {
      PT_ASSIGN_OR_RETURN(const double distance, early_update->Distance(flat, trainer.step()));
      const double relative = distance / early_update->initial_rms();
      if (trainer.step() == 0 && distance != 0) {
        // θ_0 rebuilt from the seed is not what the trainer started from
        // (an initialisation that depends on placement would do this).
        LogWarning("train",
                   "early-update measure: the model rebuilt from the seed differs from the "
                   "trainer's step 0 (distance %g); the measure is off by about that much",
                   distance);
      }
      if (metrics_file) {
        metrics_file << absl::StrFormat(
            "{\"step\":%d,\"early_update\":%s,\"early_update_relative\":%s}\n", trainer.step(),
            JsonNumber(distance), JsonNumber(relative));
        metrics_file.flush();
        events.Add(trainer.step(),
                   {{"train/early_update", distance}, {"train/early_update_relative", relative}});
      }
    }
    // Measuring is not training: keep it out of the ETA, like validation.
    eval_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - measure_start).count();
    return absl::OkStatus();
  };
  // Step 0's line checks the measure itself: it must be exactly 0.
  if (trainer.step() == 0 && train.early_update_steps() > 0) {
    PT_RETURN_IF_ERROR(measure_early_update());
  }
  while (trainer.step() < train.steps()) {
    PT_ASSIGN_OR_RETURN(last, trainer.Step());
    tokens_since_log += last.target_tokens + last.source_tokens;
    seconds_since_log += last.seconds;
    if (last.skipped) {
      if (print) LogWarning("train", "step %d skipped: %s", last.step, DescribeSkippedStep(last));
      if (last.skipped_in_a_row >= train.max_skipped_steps()) return DivergedError(train, last);
    }
    if (last.step % log_interval == 0 || last.step == train.steps() || last.skipped) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta =
          (elapsed - eval_seconds) / (last.step - first_step) * (train.steps() - last.step);
      const double rate = tokens_since_log / std::max(seconds_since_log, 1e-9);
      LogInfo("train", "step %d/%d loss=%.4f nll=%.4f lr=%.3e gnorm=%.3f tok/s=%.0f eta=%s",
              last.step, train.steps(), last.loss, last.nll, last.lr, last.grad_norm, rate,
              FormatDuration(eta));
      if (metrics_file) {
        // Loss and norm at full precision, so runs can be compared step by
        // step to the last bit (tests/emulated_pipeline_test.cc).
        metrics_file << absl::StrFormat(
            "{\"step\":%d,\"loss\":%s,\"nll\":%s,\"lr\":%.6e,\"grad_norm\":%s,"
            "\"tokens_per_s\":%.1f,\"target_tokens\":%d,\"elapsed_s\":%.3f,\"skipped\":%s,"
            "\"skipped_steps\":%d}\n",
            last.step, JsonNumber(last.loss), JsonNumber(last.nll), last.lr,
            JsonNumber(last.grad_norm), rate, last.target_tokens, elapsed,
            last.skipped ? "true" : "false", last.skipped_steps);
        metrics_file.flush();
        events.Add(last.step, {{"train/loss", last.loss},
                               {"train/nll", last.nll},
                               {"train/lr", last.lr},
                               {"train/grad_norm", last.grad_norm},
                               {"train/tokens_per_s", rate},
                               {"train/skipped_steps", static_cast<double>(last.skipped_steps)}});
      }
      tokens_since_log = 0;
      seconds_since_log = 0;
    }
    if (metrics_file && !last.layer_stats.layers.empty()) {
      // One line per statistics step (train.layer_stats_interval); the
      // per-layer lists in global layer order, null where not finite.
      const LayerStats& ls = last.layer_stats;
      auto list = [](const std::vector<double>& values) {
        std::string out = "[";
        for (size_t i = 0; i < values.size(); ++i) {
          absl::StrAppend(&out, i ? "," : "", JsonNumber(values[i]));
        }
        return out + "]";
      };
      std::string names = "[";
      for (size_t i = 0; i < ls.layers.size(); ++i) {
        absl::StrAppend(&names, i ? "," : "", "\"", ls.layers[i], "\"");
      }
      names += "]";
      metrics_file << absl::StrFormat(
          "{\"step\":%d,\"layer_stats\":{\"layers\":%s,\"grad_norm\":%s,\"update_ratio\":%s,"
          "\"residual_rms\":%s}}\n",
          last.step, names, list(ls.grad_norm), list(ls.update_ratio), list(ls.residual_rms));
      metrics_file.flush();
      ScalarList scalars;
      for (size_t i = 0; i < ls.layers.size(); ++i) {
        const std::pair<const char*, double> values[] = {{"grad_norm", ls.grad_norm[i]},
                                                         {"update_ratio", ls.update_ratio[i]},
                                                         {"residual_rms", ls.residual_rms[i]}};
        for (const auto& [stat, value] : values) {
          if (std::isfinite(value)) {
            scalars.push_back({absl::StrCat("layer/", stat, "/", ls.layers[i]), value});
          }
        }
      }
      events.Add(last.step, scalars);
    }
    if (last.step <= train.early_update_steps()) {
      PT_RETURN_IF_ERROR(measure_early_update());
      if (last.step == train.early_update_steps()) early_update.reset();
    }
    const bool final_step = last.step == train.steps();
    PT_ASSIGN_OR_RETURN(const bool preempted, trainer.AnyRank(PreemptionSignal() != 0));
    // The checkpoint first: a validation that fails must not cost the step.
    if (preempted || (train.checkpoint_interval() > 0 &&
                      (last.step % train.checkpoint_interval() == 0 || final_step))) {
      PT_RETURN_IF_ERROR(trainer.SaveCheckpoint(train.output_dir()));
      if (print) LogInfo("ckpt", "saved step %d in %s", last.step, train.output_dir());
    }
    if (train.eval_interval() > 0 && !preempted &&
        (last.step % train.eval_interval() == 0 || final_step)) {
      PT_RETURN_IF_ERROR(validate(last.step));
    }
    if (preempted && !final_step) {
      MarkStoppedForPreemption();
      if (print) WriteStopMarker(last.step, train.output_dir());
      return absl::AbortedError(absl::StrCat("preempted by a signal after step ", last.step,
                                             "; checkpoint saved in ", train.output_dir(),
                                             ". Run the same command again to resume (exit status ",
                                             kExitPreempted, ")"));
    }
  }
  PT_ASSIGN_OR_RETURN(const std::string digest, trainer.ParamsDigest());
  PT_RETURN_IF_ERROR(SaveParams(outputs.save_params_path, trainer, print));
  if (print) {
    // A resumed run with no step left has no loss of its own to report.
    const std::string loss =
        last.step > 0 ? absl::StrFormat(" loss=%.6f", last.loss) : " (no step left to run)";
    std::printf("final: step=%lld%s params_digest=%s\n", static_cast<long long>(trainer.step()),
                loss.c_str(), digest.c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

// The checkpoint to continue from, when train.output_dir has one
// (launcher/trainer/resume_point.h says which); `note` says why when it is
// not the one `latest` names. A checkpoint of another model there is an
// error: continuing would mix runs, and training would overwrite it.
absl::StatusOr<std::optional<CheckpointReader>> ChooseResumeCheckpoint(const RunSpec& spec,
                                                                       std::string* note) {
  const std::string& dir = spec.train().output_dir();
  PT_ASSIGN_OR_RETURN(ResumePoint point, FindResumePoint(dir));
  *note = point.note;
  if (!point.reader.has_value()) return std::nullopt;
  CheckpointReader& reader = *point.reader;
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
  PT_ASSIGN_OR_RETURN(SentencePieceModel loaded, SentencePieceModel::Load(CorpusVocabPath(spec)));
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
  LogInfo("train", "norms: %s", DescribeNormConstants(spec.model()));
}

// Collective: each rank's peak resident memory and what it held before the
// model was built, logged by rank 0 in MiB, to set beside `pipetrain plan`'s
// per-rank prediction (which counts the model's tensors only). -1 where the
// kernel does not say (not Linux).
absl::Status ReportHostMemory(Communicator& world,
                              const absl::StatusOr<int64_t>& resident_before_model) {
  const absl::StatusOr<int64_t> peak = PeakResidentBytes();
  const double mib = 1024.0 * 1024.0;
  Tensor mine =
      Tensor::FromVector({peak.ok() ? *peak / mib : -1.0,
                          resident_before_model.ok() ? *resident_before_model / mib : -1.0},
                         {2}, DType::kF64);
  PT_ASSIGN_OR_RETURN(const std::vector<Tensor> all, world.AllGather(mine));
  std::vector<std::string> ranks;
  for (size_t r = 0; r < all.size(); ++r) {
    ranks.push_back(absl::StrFormat("r%d %.0f (%.0f)", r, all[r].At(0), all[r].At(1)));
  }
  LogInfo("train", "host memory by rank, MiB: peak resident (before the model) %s",
          absl::StrJoin(ranks, ", "));
  return absl::OkStatus();
}

// Whether this process runs under MPI: under a launcher, or when the spec
// asks for more than one rank (so MakeTopology explains what is missing).
bool NeedsMpi(const RunSpec& spec, const ProcessEnvironment& env) {
  return env.launcher != Launcher::kNone || spec.train().pipeline().stages() > 1 ||
         spec.train().data_parallel() > 1;
}

// Collective: whether every rank's `status` is OK. Every rank learns it, so
// an error that all ranks meet (a bad layout, a missing GPU) ends the job
// with each rank's own message instead of one rank aborting the others.
absl::Status AgreeOn(Communicator& world, const absl::Status& status) {
  Tensor failed = Tensor::FromVector({status.ok() ? 0.0 : 1.0}, {1}, DType::kF64);
  PT_RETURN_IF_ERROR(world.AllReduceSum(failed));
  if (!status.ok()) {
    if (world.size() == 1) return status;
    return absl::Status(status.code(), absl::StrCat("rank ", world.rank(), " of ", world.size(),
                                                    ": ", status.message()));
  }
  if (failed.At(0) > 0) {
    return absl::AbortedError(
        absl::StrCat("rank ", world.rank(), " stops: ", static_cast<int>(failed.At(0)),
                     " other rank(s) failed to start (their messages say why)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunTraining(const RunSpec& spec, const TrainingOutputs& outputs) {
  // The host communicator: MPI, or the one-process group, which needs none.
  PT_ASSIGN_OR_RETURN(const ProcessEnvironment env, DetectEnvironment());
  if (!env.note.empty()) LogInfo("train", "%s", env.note);
  const bool launched = NeedsMpi(spec, env);
  std::unique_ptr<Communicator> world;
  if (launched) {
    PT_ASSIGN_OR_RETURN(world, MpiCommunicator::World());
    // A launcher's variables that disagree with MPI's world: ranks that were
    // never connected (srun without its MPI plugin) would each train alone
    // into the same output directory.
    if (env.launcher != Launcher::kNone) {
      PT_RETURN_IF_ERROR(CheckEnvironmentMatchesWorld(env, world->rank(), world->size()));
    }
  } else {
    world = std::make_unique<LocalCommunicator>();
  }
  const bool alone = world->size() == 1;
  if (!alone) {
    char host[256] = "?";
    gethostname(host, sizeof(host) - 1);
    StartCommWatchdog(spec.train().comm_timeout_s(),
                      absl::StrFormat("world rank %d of %d (host %s, pid %d)", world->rank(),
                                      world->size(), host, static_cast<int>(getpid())));
  }
  // A failure on one rank alone aborts the job with its message: returning
  // would leave the other ranks waiting in their next collective.
  auto fail = [&](const absl::Status& status) -> absl::Status {
    if (!alone) world->Abort(std::string(status.message()));
    return status;
  };
  // Every rank trains the same resolved spec with the same build, or none
  // starts (each returns, so no rank aborts the others).
  if (!alone) {
    const absl::Status agreed = CheckRanksAgree(*world, spec, BuildFingerprint());
    if (!agreed.ok()) {
      if (world->rank() == 0) return agreed;
      return absl::Status(agreed.code(),
                          absl::StrCat("rank ", world->rank(), " of ", world->size(),
                                       " stops: the ranks were started differently (rank 0's "
                                       "message lists them)"));
    }
  }
  // Whether to resume is decided once, from what every rank sees.
  std::string resume_note;
  auto resume = ChooseResumeCheckpoint(spec, &resume_note);
  if (!resume.ok()) return fail(resume.status());
  if (!resume_note.empty() && world->rank() == 0) LogWarning("train", "%s", resume_note);
  if (!alone) {
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
    const CommWatchdogPause preparing;  // rank 0 may train a vocabulary for minutes
    PT_RETURN_IF_ERROR(world->Barrier());
  }
  // One rank speaks for all while the trainer starts (errors still print).
  if (world->rank() != 0) SetLogVerbose(false);
  // What the process held before the model (code, MPI, libraries), and the
  // peak counted from here: preparing a corpus on rank 0 can peak higher
  // than training does.
  const absl::StatusOr<int64_t> resident_before_model = ResidentBytes();
  ResetPeakResident().IgnoreError();  // without it the peak is the lifetime's
  auto created = Trainer::Create(spec, *world);
  PT_RETURN_IF_ERROR(AgreeOn(*world, created.status()));
  Trainer& trainer = **created;
  if (!alone) SetLogIdentity(trainer.topology().Identity());
  const bool print = world->rank() == 0;
  if (!print) SetLogVerbose(false);
  // The one-process CPU run keeps its short log; any launcher, grid or device
  // says where the work runs.
  const bool pipelined =
      launched || trainer.bounds().size() > 2 || trainer.device() != Device::kCpu;
  if (pipelined) {
    const std::vector<int>& bounds = trainer.bounds();
    std::string layout;
    for (size_t vs = 0; vs + 1 < bounds.size(); ++vs) {
      absl::StrAppend(&layout, vs == 0 ? "" : " ", "[", bounds[vs], ",", bounds[vs + 1], ")");
    }
    LogInfo("train",
            "pipeline: %d stages x %d chunks (%s, %s), %d replicas on %s, %d ranks (%s); layers "
            "per virtual stage: %s",
            trainer.topology().pipeline_stages, spec.train().pipeline().chunks(),
            EnumSpelling(spec.train().pipeline().schedule()), spec.train().pipeline().partition(),
            trainer.topology().data_parallel, DeviceName(trainer.device()), world->size(),
            env.launcher == Launcher::kNone ? "no launcher" : LauncherName(env.launcher), layout);
  }
  if (trainer.topology().pipeline_stages > 1) {
    // Counted from what the ranks opened, not from the rule that decides it.
    Tensor readers = Tensor::FromVector({trainer.opened_data() ? 1.0 : 0.0}, {1}, DType::kF64);
    PT_RETURN_IF_ERROR(world->AllReduceSum(readers));
    LogInfo("data",
            "%d of %d ranks read the training data (stage 0 of each replica); the other stages "
            "receive their micro-batches from it",
            static_cast<int>(readers.At(0)), world->size());
  }
  LogModel(spec, trainer.parameters(), pipelined ? " on this rank" : "");
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
  std::unique_ptr<EarlyUpdateProbe> early_update;
  const int64_t last_measured =
      std::min<int64_t>(spec.train().early_update_steps(), spec.train().steps());
  if (print && trainer.step() < last_measured) {
    auto made = EarlyUpdateProbe::Create(spec);
    if (!made.ok()) return fail(made.status());
    early_update = std::move(*made);
    LogInfo("train",
            "early-update measure over steps %d-%d: step 0's batch, %d target tokens, "
            "RMS ||F(x; theta_0)|| = %.4f",
            trainer.step() + 1, last_measured, early_update->tokens(), early_update->initial_rms());
  }
  absl::Status status =
      RunSteps(spec.train(), outputs, trainer, print, validator.get(), std::move(early_update));
  // Every rank agreed to stop (the checkpoint complete, or the same step
  // diverged everywhere): leave cleanly, without aborting the others.
  if (StoppedForPreemption() || IsDivergedError(status)) return status;
  if (!status.ok()) return fail(status);
  if (pipelined) {
    // The activations each stage held at most, against the schedule
    // simulator's prediction (in micro-batches × chunks; the last step's).
    auto report = trainer.PeakLiveReport();
    if (!report.ok()) return fail(report.status());
    LogInfo("train", "peak live activations by stage: %s", *report);
  }
  const absl::Status memory = ReportHostMemory(*world, resident_before_model);
  if (!memory.ok()) return fail(memory);
  return absl::OkStatus();
}

}  // namespace pipetrain
