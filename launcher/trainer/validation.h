// Validation on the dev split of a corpus: the loss of dev pairs (no
// dropout) and, for chosen directions, BLEU and chrF of decoded dev
// sentences against their references. The trainer runs it every
// train.eval_interval steps; `pipetrain eval` runs it on a checkpoint.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_VALIDATION_H_
#define PIPETRAIN_LAUNCHER_TRAINER_VALIDATION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/collate.h"
#include "core/data/multiway_corpus.h"
#include "core/data/sentencepiece_model.h"
#include "core/tensor.h"
#include "launcher/trainer/direction_groups.h"
#include "models/transformer_model.h"
#include "models/translator.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

struct DirectionScores {
  std::string src, tgt;
  int sentences = 0;  // decoded; 0 for a direction validated by its loss only
  double bleu = 0, chrf = 0;
  double loss = 0;  // smoothed loss per target token of its loss pairs
  std::string sample_source, sample_hypothesis, sample_reference;  // its first sentence
};

// The mean BLEU and chrF of a group's decoded directions (direction_groups.h).
struct GroupScores {
  std::string name;  // "en-x", "x-en", "x-y"
  int directions = 0;
  double bleu = 0, chrf = 0;
};

struct ValidationResult {
  double loss = 0, nll = 0;  // per target token, over every direction's loss pairs
  int64_t tokens = 0;
  std::vector<DirectionScores> directions;
  double seconds = 0;
  std::string pivot = "en";  // the language the groups are formed around
  // The decoded directions grouped en→X, X→en, X→Y (groups without one are left out).
  std::vector<GroupScores> Groups() const;
  // "en-x BLEU=… chrF=… (8) | x-en … | x-y …", or "" when nothing was decoded.
  std::string GroupSummary() const;
  // "val_loss=… ppl=… en-de: BLEU=… chrF=…; …"
  std::string Summary() const;
  // One JSON object (no newline): step, loss, nll, ppl, bleu/chrf per direction
  // and per group ("bleu/en-x").
  std::string Json(int64_t step) const;
};

struct ValidationOptions {
  std::string split = "dev";  // "dev" or "test"
  // "src-tgt". Empty: `sample_per_group` directions of each of `groups`
  // (seeded, among the directions of `languages` with pairs in the split),
  // or, when that is 0, the loss only over the (up to 8) directions with the
  // most pairs in the split among `languages`.
  std::vector<std::string> directions;
  int sample_per_group = 0;
  std::vector<DirectionGroup> groups = {DirectionGroup::kFromPivot, DirectionGroup::kToPivot,
                                        DirectionGroup::kBetweenOthers};
  std::string pivot = "en";
  uint64_t sample_seed = 0;
  std::vector<std::string> languages;  // empty: every language of the split
  int sentences = 100;                 // decoded per direction
  int loss_sentences = 200;            // pairs per direction for the loss
  int beam_size = 1;
  double length_penalty = 0;
  int max_length = 0;  // tokens per side, tag included; longer loss pairs are skipped
  int tokens_per_batch = 4096;
};

// The options a spec's train.validation block asks for.
ValidationOptions ValidationOptionsFromSpec(const RunSpec& spec);

class Validator {
 public:
  // Reads `corpus_dir`'s split and encodes the pairs it needs once. Errors
  // name a direction the corpus does not have.
  static absl::StatusOr<std::unique_ptr<Validator>> Create(const ModelSpec& spec,
                                                           const std::string& corpus_dir,
                                                           const SentencePieceModel& vocab,
                                                           const ValidationOptions& options);

  // Evaluates the model whose whole flat parameter buffer is `flat_params`
  // (one process's layout, as ParameterStore::flat_params() or a pipeline's
  // VisitParameters give it) after `training_step` updates.
  absl::StatusOr<ValidationResult> Run(const Tensor& flat_params, int64_t training_step);
  // The directions it scores.
  size_t direction_count() const { return directions_.size(); }

 private:
  struct Direction {
    std::string src, tgt;
    std::vector<SentencePair> loss_pairs;
    std::vector<std::vector<int32_t>> sources;  // decoded sentences, tag first
    std::vector<std::string> source_texts, references;
  };
  Validator(const ModelSpec& spec, const SentencePieceModel& vocab, ValidationOptions options)
      : spec_(spec), vocab_(vocab), options_(std::move(options)) {}

  ModelSpec spec_;
  const SentencePieceModel& vocab_;
  ValidationOptions options_;
  std::vector<Direction> directions_;
  std::unique_ptr<TransformerModel> model_;
  std::unique_ptr<Translator> translator_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_VALIDATION_H_
