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
          "eval: directions to score, comma-separated src-tgt, or a group of them: en-x, x-en, "
          "x-y or all (a seeded sample of --sample directions each; default: the spec's "
          "train.validation)");
ABSL_FLAG(int32_t, sample, 8,
          "eval: directions sampled per group with --directions en-x|x-en|x-y|all");
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
  // The training run's own validation settings, then what the flags change.
  ValidationOptions options = ValidationOptionsFromSpec(loaded.spec);
  options.split = absl::GetFlag(FLAGS_split);
  const std::string wanted = absl::GetFlag(FLAGS_directions);
  if (NamesDirectionGroups(wanted, options.pivot)) {
    PT_ASSIGN_OR_RETURN(options.groups, ParseDirectionGroups(wanted, options.pivot));
    options.directions.clear();
    options.sample_per_group = absl::GetFlag(FLAGS_sample);
    PT_CHECK_ARG(options.sample_per_group >= 1, "--sample must be >= 1");
  } else if (!wanted.empty()) {
    options.directions = absl::StrSplit(wanted, ',', absl::SkipEmpty());
    options.sample_per_group = 0;
  }
  PT_CHECK_ARG(!options.directions.empty() || options.sample_per_group > 0,
               "no directions to score: pass --directions src-tgt[,src-tgt...] (e.g. en-de) or "
               "a group: en-x, x-en, x-y, all");
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
          loaded.step, corpus, options.split, validator->direction_count(), options.beam_size);
  PT_ASSIGN_OR_RETURN(const ValidationResult result,
                      validator->Run(loaded.model->params().flat_params(), loaded.step));
  // Direction by direction within each group, then the groups' means: the
  // layout of DeepNet's M2M table.
  std::printf("%-16s %9s %8s %8s %8s\n", "direction", "sentences", "BLEU", "chrF2", "loss");
  for (const GroupScores& group : result.Groups()) {
    for (const DirectionScores& d : result.directions) {
      if (DirectionGroupName(GroupOf(d.src, d.tgt, result.pivot), result.pivot) != group.name) {
        continue;
      }
      std::printf("%-16s %9d %8.2f %8.2f %8.4f\n", absl::StrCat(d.src, "-", d.tgt).c_str(),
                  d.sentences, d.bleu, d.chrf, d.loss);
    }
    std::printf("%-16s %9d %8.2f %8.2f\n", absl::StrCat("mean ", group.name).c_str(),
                group.directions, group.bleu, group.chrf);
  }
  for (const DirectionScores& d : result.directions) {
    if (d.sentences > 0) continue;  // scored by its loss only
    std::printf("%-16s %9d %8s %8s %8.4f\n", absl::StrCat(d.src, "-", d.tgt).c_str(), 0, "-", "-",
                d.loss);
  }
  std::printf("%s\n", result.Json(loaded.step).c_str());
  return absl::OkStatus();
}

}  // namespace pipetrain
