// Training benchmark (CPU, or GPU with --set train.device=cuda; the name is
// historical): trains a spec's model on fixed-length synthetic
// batches with the one-process Trainer and prints ONE JSON line with
// throughput, step time and peak memory, so runs can be compared over time
// and with the PyTorch peer (bench/torch_peer.py, bench/run_cpu_bench.sh).
//
//   cpu_train_bench --spec FILE [--set field=value]... [--seq 32] [--batch 16]
//                   [--warmup 2] [--steps 5] [--threads 2] [--keep_dropout]
//                   [--phase_steps 0]
//
// Every sentence has exactly --seq source and --seq target tokens and every
// step exactly --batch sentences, so the shapes equal the peer's. Dropout is
// off unless --keep_dropout (the peer has none). With --phase_steps N, N more
// steps are driven phase by phase through the model (data, forward, backward,
// clip, AdamW) and their mean times are added as "phase_ms"; they run after
// the peak memory is read, so they do not change it.
#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config/spec_loader.h"
#include "core/data/collate.h"
#include "core/data/synthetic_task.h"
#include "core/device.h"
#include "core/optim/adamw.h"
#include "core/optim/grad_clip.h"
#include "core/optim/lr_schedule.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/command_line.h"
#include "launcher/trainer/trainer.h"
#include "models/transformer_model.h"

ABSL_FLAG(std::string, spec, "", "Run spec (protobuf text format); required");
ABSL_FLAG(int32_t, seq, 32, "Source and target tokens of every sentence");
ABSL_FLAG(int32_t, batch, 16, "Sentences per optimizer step");
ABSL_FLAG(int32_t, warmup, 2, "Untimed steps before the timed ones");
ABSL_FLAG(int32_t, steps, 5, "Timed steps");
ABSL_FLAG(int32_t, threads, 2, "OpenBLAS and OpenMP threads");
ABSL_FLAG(bool, keep_dropout, false, "Keep the spec's dropout (default: all dropout 0)");
ABSL_FLAG(int32_t, phase_steps, 0, "Extra steps timed phase by phase (0: none)");

namespace pipetrain {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Peak resident set of the process so far; Linux reports ru_maxrss in KiB.
double PeakRssGiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

// Current resident set, from /proc/self/statm (pages).
double CurrentRssGiB() {
  std::ifstream statm("/proc/self/statm");
  long long size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0.0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0 * 1024.0);
}

// Escapes a string for a JSON value (paths may hold quotes or backslashes).
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Which OpenBLAS build is loaded (the pthreads and the OpenMP builds behave
// very differently next to OpenMP loops) and how OpenMP threads wait.
std::string ThreadingDescription(std::string* wait_policy) {
  const int parallel = openblas_get_parallel();
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  *wait_policy = policy != nullptr ? policy : "default";
  return absl::StrCat("OpenBLAS ",
                      parallel == 2   ? "openmp"
                      : parallel == 1 ? "pthreads"
                                      : "serial",
                      " ", openblas_get_corename());
}

struct Options {
  std::string spec_path;
  std::vector<std::string> overrides;
  int seq, batch, warmup, steps, threads, phase_steps;
  bool keep_dropout;
};

// The overrides that make every step exactly `batch` sentences of `seq`
// tokens: dropout off first (so a user's --set can still turn it on), then the
// user's, then the fixed-length data settings, which must hold.
absl::StatusOr<std::vector<std::string>> BenchOverrides(const Options& o) {
  std::vector<std::string> out;
  if (!o.keep_dropout) {
    out = {"model.attention_dropout=0", "model.activation_dropout=0", "model.residual_dropout=0"};
  }
  out.insert(out.end(), o.overrides.begin(), o.overrides.end());
  // The tokens a pair costs depend on the model kind, which the spec (or a
  // --set) decides, so load once to learn it.
  std::vector<std::string> probe_overrides = out;
  for (const std::string& s :
       {absl::StrCat("train.synthetic.min_length=", o.seq),
        absl::StrCat("train.synthetic.max_length=", o.seq),
        std::string("train.tokens_per_batch=1000000000"), std::string("train.steps=1")}) {
    probe_overrides.push_back(s);
  }
  PT_ASSIGN_OR_RETURN(RunSpec probe, LoadRunSpec(o.spec_path, "", probe_overrides));
  SentencePair pair;
  pair.src.assign(o.seq, kFirstContentId);
  pair.tgt.assign(o.seq, kFirstContentId);
  const int64_t per_pair = PairTokens(probe.model().kind(), pair);
  const int microbatches = std::max(probe.train().microbatches(), 1);
  if (o.batch < microbatches) {
    return absl::InvalidArgumentError(absl::StrCat("--batch=", o.batch, " is smaller than the ",
                                                   microbatches, " micro-batches of the spec"));
  }
  out.push_back(absl::StrCat("train.synthetic.min_length=", o.seq));
  out.push_back(absl::StrCat("train.synthetic.max_length=", o.seq));
  out.push_back(absl::StrCat("train.tokens_per_batch=", per_pair * o.batch));
  // The spec's own step count is irrelevant here but must stay valid.
  out.push_back(absl::StrCat("train.steps=", o.warmup + o.steps + o.phase_steps));
  return out;
}

// Mean wall time per phase over `steps` steps driven through the model
// directly, mirroring Trainer::Step (which times only the whole step).
struct PhaseTimes {
  double data = 0, zero = 0, forward = 0, backward = 0, clip = 0, adamw = 0;
};

absl::StatusOr<PhaseTimes> TimePhases(const RunSpec& spec, TransformerModel& model, int64_t first,
                                      int steps) {
  const TrainConfig& train = spec.train();
  const int microbatches = std::max(train.microbatches(), 1);
  ParameterStore& store = model.params();
  Tensor& params = store.flat_params();
  Tensor m = Tensor::Zeros(params.shape(), params.dtype());
  Tensor v = Tensor::Zeros(params.shape(), params.dtype());
  PhaseTimes sum;
  for (int s = 0; s < steps; ++s) {
    const int64_t step = first + s;
    auto t = Clock::now();
    const std::vector<SentencePair> pairs =
        SyntheticStepPairs(spec.model(), train, step, microbatches);
    PT_ASSIGN_OR_RETURN(std::vector<Batch> batches,
                        CollateMicrobatches(spec.model().kind(), pairs, microbatches));
    int64_t tokens = 0;
    for (const Batch& b : batches) tokens += b.LabelTokens();
    sum.data += SecondsSince(t);

    t = Clock::now();
    store.ZeroGrads();
    sum.zero += SecondsSince(t);
    for (int mb = 0; mb < microbatches; ++mb) {
      StepContext ctx{.seed = train.seed(), .step = step, .microbatch = mb, .training = true};
      ModelSaved saved;
      t = Clock::now();
      PT_RETURN_IF_ERROR(model.Forward(ctx, batches[mb], &saved).status());
      sum.forward += SecondsSince(t);
      t = Clock::now();
      PT_RETURN_IF_ERROR(
          model.Backward(ctx, batches[mb], &saved, 1.0 / std::max<int64_t>(tokens, 1)));
      sum.backward += SecondsSince(t);
    }

    t = Clock::now();
    Tensor& grads = store.flat_grads();
    PT_RETURN_IF_ERROR(ClipToNorm(grads, SumOfSquares(grads), train.clip_norm()).status());
    sum.clip += SecondsSince(t);
    t = Clock::now();
    const AdamWHyper hyper{.lr = LearningRate(train, step + 1),
                           .beta1 = train.adamw().beta1(),
                           .beta2 = train.adamw().beta2(),
                           .epsilon = train.adamw().epsilon(),
                           .weight_decay = train.adamw().weight_decay()};
    PT_RETURN_IF_ERROR(AdamWStep(hyper, s + 1, params, grads, m, v));
    sum.adamw += SecondsSince(t);
  }
  const double scale = 1000.0 / steps;  // mean, in ms
  for (double* x : {&sum.data, &sum.zero, &sum.forward, &sum.backward, &sum.clip, &sum.adamw}) {
    *x *= scale;
  }
  return sum;
}

absl::Status Run(const Options& o) {
  if (o.spec_path.empty()) {
    return absl::InvalidArgumentError(
        "cpu_train_bench needs --spec FILE, e.g. --spec configs/tiny.pbtxt");
  }
  if (o.seq < 1 || o.batch < 1 || o.warmup < 0 || o.steps < 1 || o.threads < 1 ||
      o.phase_steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "need --seq >= 1, --batch >= 1, --warmup >= 0, --steps >= 1, --threads >= 1 and "
        "--phase_steps >= 0; got --seq=",
        o.seq, " --batch=", o.batch, " --warmup=", o.warmup, " --steps=", o.steps,
        " --threads=", o.threads, " --phase_steps=", o.phase_steps));
  }
  openblas_set_num_threads(o.threads);
  omp_set_num_threads(o.threads);

  PT_ASSIGN_OR_RETURN(std::vector<std::string> overrides, BenchOverrides(o));
  PT_ASSIGN_OR_RETURN(RunSpec spec, LoadRunSpec(o.spec_path, "", overrides));
  const ModelSpec& model_spec = spec.model();
  const TrainConfig& train = spec.train();
  const double base_rss = CurrentRssGiB();
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(spec));

  const int64_t expected_tgt = static_cast<int64_t>(o.batch) * (o.seq + 1);
  StepMetrics first, last;
  double timed_seconds = 0, min_step = 1e30;
  int64_t tgt_tokens = 0, all_tokens = 0;
  for (int s = 0; s < o.warmup + o.steps; ++s) {
    const auto start = Clock::now();
    PT_ASSIGN_OR_RETURN(last, trainer->Step());
    const double seconds = SecondsSince(start);
    if (s == 0) {
      first = last;
      // The batch must be what the peer computes, or the ratio means nothing.
      if (last.sentences != o.batch || last.target_tokens != expected_tgt) {
        return absl::InternalError(absl::StrCat(
            "step 1 had ", last.sentences, " sentences and ", last.target_tokens,
            " label tokens; expected ", o.batch, " and ", expected_tgt,
            " (does the spec set microbatches or a model kind the bench does not size?)"));
      }
    }
    if (s >= o.warmup) {
      timed_seconds += seconds;
      min_step = std::min(min_step, seconds);
      tgt_tokens += last.target_tokens;
      all_tokens += last.target_tokens + last.source_tokens;
    }
  }
  const double peak_rss = PeakRssGiB();
  // Library code may change the OpenMP thread count behind the bench's back
  // (OpenBLAS's OpenMP build sets it in openblas_set_num_threads); report it,
  // because then --threads is not what ran.
  const int omp_threads_after = omp_get_max_threads();
  if (omp_threads_after != o.threads) {
    std::fprintf(stderr,
                 "cpu_train_bench: warning: --threads=%d but OpenMP runs %d thread(s) after the "
                 "timed steps; something in the step changed the OpenMP thread count\n",
                 o.threads, omp_threads_after);
  }
  std::string wait_policy;
  const std::string blas = ThreadingDescription(&wait_policy);

  std::string phases;
  if (o.phase_steps > 0) {
    // The phases are timed on a model of their own, driven op group by op
    // group (the trainer times only whole steps).
    PT_ASSIGN_OR_RETURN(std::unique_ptr<TransformerModel> model,
                        TransformerModel::Create(spec.model(), DType::kF32, spec.train().seed()));
    PT_ASSIGN_OR_RETURN(PhaseTimes p, TimePhases(spec, *model, trainer->step(), o.phase_steps));
    phases = absl::StrFormat(
        ",\"phase_ms\":{\"data\":%.3f,\"zero_grads\":%.3f,\"forward\":%.3f,\"backward\":%.3f,"
        "\"clip\":%.3f,\"adamw\":%.3f}",
        p.data, p.zero, p.forward, p.backward, p.clip, p.adamw);
  }

  absl::PrintF(
      "{\"bench\":\"cpu_train\",\"impl\":\"pipetrain\",\"spec\":%s,\"kind\":\"%s\","
      "\"norm\":\"%s\",\"params\":%d,\"enc\":%d,\"dec\":%d,\"d\":%d,\"ffn\":%d,\"heads\":%d,"
      "\"vocab\":%d,\"seq\":%d,\"batch\":%d,\"threads\":%d,\"warmup\":%d,\"steps\":%d,"
      "\"tgt_tokens_per_s\":%.1f,\"tokens_per_s\":%.1f,\"step_ms\":%.2f,\"step_ms_min\":%.2f,"
      "\"peak_rss_gib\":%.4f,\"base_rss_gib\":%.4f,\"loss_first\":%.6f,\"loss\":%.6f,"
      "\"label_smoothing\":%g,\"lr\":%g,\"lr_schedule\":\"%s\",\"warmup_steps\":%d,"
      "\"beta1\":%g,\"beta2\":%g,\"adam_eps\":%g,\"weight_decay\":%g,\"clip_norm\":%g,"
      "\"layer_norm_eps\":%g,\"dropout\":%s,\"blas\":%s,\"omp_wait_policy\":%s,"
      "\"omp_threads_after\":%d,\"device\":\"%s\",\"dtype\":\"%s\",\"peak_gpu_mib\":%.1f%s}\n",
      JsonString(o.spec_path), ModelKind_Name(model_spec.kind()),
      ResidualNorm_Name(model_spec.norm()), trainer->parameters(), model_spec.encoder_layers(),
      model_spec.decoder_layers(), model_spec.d_model(), model_spec.ffn_dim(), model_spec.heads(),
      model_spec.vocab_size(), o.seq, o.batch, o.threads, o.warmup, o.steps,
      tgt_tokens / timed_seconds, all_tokens / timed_seconds, 1000.0 * timed_seconds / o.steps,
      1000.0 * min_step, peak_rss, base_rss, first.loss, last.loss, model_spec.label_smoothing(),
      train.lr(), LrSchedule_Name(train.lr_schedule()), train.warmup_steps(), train.adamw().beta1(),
      train.adamw().beta2(), train.adamw().epsilon(), train.adamw().weight_decay(),
      train.clip_norm(), model_spec.layer_norm_eps(), o.keep_dropout ? "true" : "false",
      JsonString(blas), JsonString(wait_policy), omp_threads_after, train.device(), train.dtype(),
      DeviceMemoryStats().peak_allocated_bytes / 1048576.0, phases);
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace
}  // namespace pipetrain

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "cpu_train_bench --spec FILE [--set field=value]... [--seq N] [--batch B] [--warmup W] "
      "[--steps S] [--threads T] [--keep_dropout] [--phase_steps N]");
  // SplitCommandLine takes the first bare word as a subcommand; the bench has
  // none, so a placeholder keeps a flag's separate value (`--seq 32`) from
  // being taken for one.
  std::vector<char*> args(argv, argv + argc);
  char placeholder[] = "bench";
  args.insert(args.begin() + 1, placeholder);
  pipetrain::CommandLine cl =
      pipetrain::SplitCommandLine(static_cast<int>(args.size()), args.data());
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(cl.absl_argv.size()), cl.absl_argv.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "cpu_train_bench: unexpected argument '%s'\n", positional[1]);
    return 2;
  }
  pipetrain::SetLogVerbose(false);
  const pipetrain::Options options{.spec_path = absl::GetFlag(FLAGS_spec),
                                   .overrides = cl.overrides,
                                   .seq = absl::GetFlag(FLAGS_seq),
                                   .batch = absl::GetFlag(FLAGS_batch),
                                   .warmup = absl::GetFlag(FLAGS_warmup),
                                   .steps = absl::GetFlag(FLAGS_steps),
                                   .threads = absl::GetFlag(FLAGS_threads),
                                   .phase_steps = absl::GetFlag(FLAGS_phase_steps),
                                   .keep_dropout = absl::GetFlag(FLAGS_keep_dropout)};
  const absl::Status status = pipetrain::Run(options);
  if (!status.ok()) {
    std::fprintf(stderr, "cpu_train_bench: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
