#include "launcher/eval_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/inference_model.h"
#include "launcher/trainer/validation.h"

ABSL_FLAG(std::string, directions, "",
          "eval: directions to score, comma-separated src-tgt (default: the spec's "
          "train.validation.directions)");
ABSL_FLAG(std::string, split, "dev", "eval: the corpus split to score, dev or test");
ABSL_FLAG(int32_t, sentences, 200, "eval: sentences decoded per direction (the first ones)");
// Shared flags: translate_command.cc and data_command.cc.
ABSL_DECLARE_FLAG(std::string, ckpt);
ABSL_DECLARE_FLAG(int32_t, beam);
ABSL_DECLARE_FLAG(double, length_penalty);
ABSL_DECLARE_FLAG(std::string, vocab);
ABSL_DECLARE_FLAG(std::string, corpus);

namespace pipetrain {

absl::Status RunEvalCommand() {
  PT_ASSIGN_OR_RETURN(InferenceModel loaded,
                      LoadInferenceModel(absl::GetFlag(FLAGS_ckpt), absl::GetFlag(FLAGS_vocab)));
  const TrainConfig& train = loaded.spec.train();
  const std::string corpus =
      absl::GetFlag(FLAGS_corpus).empty() ? train.corpus().dir() : absl::GetFlag(FLAGS_corpus);
  PT_CHECK_ARG(!corpus.empty(), "the checkpoint's spec names no corpus; pass --corpus DIR");
  ValidationOptions options;
  options.split = absl::GetFlag(FLAGS_split);
  if (absl::GetFlag(FLAGS_directions).empty()) {
    options.directions.assign(train.validation().directions().begin(),
                              train.validation().directions().end());
  } else {
    options.directions = absl::StrSplit(absl::GetFlag(FLAGS_directions), ',', absl::SkipEmpty());
  }
  PT_CHECK_ARG(!options.directions.empty(),
               "no directions to score: pass --directions src-tgt[,src-tgt...], e.g. en-de");
  options.sentences = absl::GetFlag(FLAGS_sentences);
  options.loss_sentences = options.sentences;
  options.beam_size = absl::GetFlag(FLAGS_beam);
  options.length_penalty = absl::GetFlag(FLAGS_length_penalty);
  options.max_length = train.corpus().max_length();
  PT_CHECK_ARG(options.sentences >= 1, "--sentences must be >= 1");
  PT_CHECK_ARG(options.beam_size >= 1, "--beam must be >= 1");
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Validator> validator,
                      Validator::Create(loaded.spec.model(), corpus, *loaded.vocab, options));
  LogInfo("eval", "%s (step %d) on %s/%s, %d directions, beam %d", loaded.checkpoint_dir,
          loaded.step, corpus, options.split, options.directions.size(), options.beam_size);
  PT_ASSIGN_OR_RETURN(const ValidationResult result,
                      validator->Run(loaded.model->params().flat_params(), loaded.step));
  std::printf("%-14s %9s %8s %8s %8s\n", "direction", "sentences", "BLEU", "chrF2", "loss");
  for (const DirectionScores& d : result.directions) {
    std::printf("%-14s %9d %8.2f %8.2f %8.4f\n", absl::StrCat(d.src, "-", d.tgt).c_str(),
                d.sentences, d.bleu, d.chrf, d.loss);
  }
  std::printf("%s\n", result.Json(loaded.step).c_str());
  return absl::OkStatus();
}

}  // namespace pipetrain
