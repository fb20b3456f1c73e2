// pipetrain: one binary, several subcommands (train, plan, data, translate,
// eval, score, ckpt, version); `pipetrain --spec FILE` is `pipetrain train`.
// Only this file exits the process; everything below returns absl::Status.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "core/gpu_runtime.h"
#include "launcher/ckpt_command.h"
#include "launcher/command_line.h"
#include "launcher/data_command.h"
#include "launcher/eval_command.h"
#include "launcher/plan_command.h"
#include "launcher/score_command.h"
#include "launcher/train_command.h"
#include "launcher/trainer/divergence.h"
#include "launcher/trainer/preemption.h"
#include "launcher/translate_command.h"

namespace {

constexpr char kUsage[] =
    "usage: pipetrain <command> [flags]\n"
    "       pipetrain --spec FILE [flags]   (train is the command when the first argument is a "
    "flag)\n"
    "\n"
    "commands:\n"
    "  train    --spec FILE [--config FILE] [--steps N] [--seed S] [--set field=value]...\n"
    "           [--metrics FILE] [--save-params FILE]   train a model: one process, or\n"
    "           pipeline x data parallel under mpirun; on a corpus (train.corpus, prepared on the\n"
    "           first run: configs/demo.pbtxt) or the built-in synthetic task\n"
    "  plan     --spec FILE --world N [--dp D] [--microbatches M] [--schedule S] [--chunks V]\n"
    "           [--partition P] [--recompute R] [--seq L] [--trace FILE]   partition, memory\n"
    "           per GPU, simulated step time and bubble on N GPUs (docs/plan.md)\n"
    "  data     build --out DIR --from-gettext /usr/share/locale | --from-tsv FILE (docs/data.md)\n"
    "           vocab --corpus DIR [--vocab-size 8000]   SentencePiece vocabulary of a corpus\n"
    "           shard --corpus DIR [--languages en,de,...]   token shards for training\n"
    "  translate --ckpt RUN_DIR --src-lang en --tgt-lang de [--beam 4] [--length-penalty A]\n"
    "           stdin to stdout, a line for a line (docs/translate.md)\n"
    "  eval     --ckpt RUN_DIR [--directions en-de,de-fr] [--split dev|test] [--beam 4]\n"
    "           BLEU and chrF per direction on a corpus split\n"
    "  score    --hyp FILE --ref FILE[,FILE2...]   corpus BLEU, chrF2 and chrF2++ as sacreBLEU\n"
    "           computes them (docs/metrics.md)\n"
    "  ckpt     inspect PATH | verify PATH [--spec FILE] | export PATH --out FILE.safetensors\n"
    "           look into, check (sizes, CRC-32C, finite values, the tensors of its spec and\n"
    "           of --spec FILE) or export a checkpoint (docs/checkpoints.md)\n"
    "  version  print the build configuration\n"
    "\n"
    "`--set` overrides any spec or config field, e.g. --set model.d_model=128\n"
    "or --set train.adamw.beta2=0.95 (the model./train. prefix may be left out\n"
    "when the name is unambiguous). See docs/spec-reference.md.\n";

int PrintVersion() {
  std::string why;
  const int gpus = pipetrain::CudaDeviceCount(&why);
  std::printf("pipetrain 0.1 (C++20), CUDA backend: %s, visible GPUs: %d%s%s\n",
              pipetrain::BuiltWithCuda() ? "built" : "not built", gpus, why.empty() ? "" : " — ",
              why.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  pipetrain::CommandLine cl = pipetrain::SplitCommandLine(argc, argv);
  // What absl leaves: argv[0], then the positional arguments (ckpt's action and PATH).
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(cl.absl_argv.size()), cl.absl_argv.data());
  if (cl.subcommand.empty() || cl.subcommand == "help") {
    std::fputs(kUsage, cl.subcommand.empty() ? stderr : stdout);
    return cl.subcommand.empty() ? 2 : 0;
  }
  absl::Status status;
  if (cl.subcommand == "train") {
    status = pipetrain::RunTrainCommand(cl.overrides);
  } else if (cl.subcommand == "plan") {
    status = pipetrain::RunPlanCommand(cl.overrides);
  } else if (cl.subcommand == "data") {
    status = pipetrain::RunDataCommand(cl.absl_argv);
  } else if (cl.subcommand == "translate") {
    status = pipetrain::RunTranslateCommand();
  } else if (cl.subcommand == "eval") {
    status = pipetrain::RunEvalCommand();
  } else if (cl.subcommand == "score") {
    status = pipetrain::RunScoreCommand(cl.absl_argv);
  } else if (cl.subcommand == "ckpt") {
    status = pipetrain::RunCkptCommand(
        std::vector<std::string>(positional.begin() + 1, positional.end()));
  } else if (cl.subcommand == "version") {
    return PrintVersion();
  } else {
    std::fprintf(stderr, "pipetrain: unknown command '%s'\n\n%s", cl.subcommand.c_str(), kUsage);
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "pipetrain %s: %s\n", cl.subcommand.c_str(),
                 std::string(status.message()).c_str());
    // A job stopped by its scheduler, with its checkpoint written.
    if (pipetrain::StoppedForPreemption()) {
      return pipetrain::kExitPreempted;
    }
    if (const std::optional<int> code = pipetrain::RequestedExitStatus(status)) return *code;
    return 1;
  }
  return 0;
}
