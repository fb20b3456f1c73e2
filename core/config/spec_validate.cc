// Semantic checks of the fields of a RunSpec, and the per-layer norm lookup
// of the model builder. Every problem is collected (a user fixes a spec once,
// not once per error) and each names the field, its value and what is allowed.
// The rules about residual norms and placement are SpecChecks of models/ and
// parallel/ (spec_problems.h), run after these.
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config/spec_bounds.h"
#include "core/config/spec_fields.h"
#include "core/config/spec_loader.h"
#include "core/config/spec_problems.h"

namespace pipetrain {
namespace {

using spec_fields::Covers;
using spec_fields::Depth;
using spec_fields::KindName;
using spec_fields::NormName;
using spec_fields::StackName;

bool InUnit(double x) { return x >= 0 && x < 1; }  // false for NaN too

// The upper bound of a size field (spec_bounds.h). Values arrive as int64, so
// a caller's sum (max_length + 2) cannot overflow before it is compared.
void AtMost(SpecProblems& p, const char* field, int64_t value, int64_t limit, const char* advice) {
  if (value > limit) p.Add(field, "=", value, " is above the limit of ", limit, "; ", advice);
}

void CheckLayers(const ModelSpec& m, SpecProblems& p) {
  const int enc = m.encoder_layers();
  const int dec = m.decoder_layers();
  switch (m.kind()) {
    case ENCODER_DECODER:
      if (enc <= 0) p.Add("model.encoder_layers=", enc, " must be > 0 for ENCODER_DECODER");
      if (dec <= 0) p.Add("model.decoder_layers=", dec, " must be > 0 for ENCODER_DECODER");
      break;
    case DECODER_ONLY:
      if (enc != 0) {
        p.Add("model.encoder_layers=", enc,
              " must be 0 for DECODER_ONLY (its one stack is the decoder: set decoder_layers)");
      }
      if (dec <= 0) p.Add("model.decoder_layers=", dec, " must be > 0 for DECODER_ONLY");
      break;
    case ENCODER_ONLY:
      if (dec != 0) {
        p.Add("model.decoder_layers=", dec,
              " must be 0 for ENCODER_ONLY (its one stack is the encoder: set encoder_layers)");
      }
      if (enc <= 0) p.Add("model.encoder_layers=", enc, " must be > 0 for ENCODER_ONLY");
      break;
    default:  // kind itself is reported elsewhere
      if (enc < 0) p.Add("model.encoder_layers=", enc, " must be >= 0");
      if (dec < 0) p.Add("model.decoder_layers=", dec, " must be >= 0");
  }
}

void CheckModel(const ModelSpec& m, SpecProblems& p) {
  if (m.kind() == MODEL_KIND_UNSPECIFIED || !ModelKind_IsValid(m.kind())) {
    p.Add("model.kind=", KindName(m.kind()),
          " is not a model kind; set kind: ENCODER_DECODER, DECODER_ONLY or ENCODER_ONLY");
  }
  if (m.vocab_size() <= 4) {
    p.Add("model.vocab_size=", m.vocab_size(),
          " must be > 4 (ids 0..3 are <pad>, <s>, </s>, <unk>)");
  }
  AtMost(p, "model.vocab_size", m.vocab_size(), spec_bounds::kMaxVocabSize,
         "use a smaller vocabulary (data vocab --vocab_size)");
  if (m.d_model() <= 0) p.Add("model.d_model=", m.d_model(), " must be > 0");
  AtMost(p, "model.d_model", m.d_model(), spec_bounds::kMaxDModel, "lower d_model");
  if (m.ffn_dim() <= 0) p.Add("model.ffn_dim=", m.ffn_dim(), " must be > 0");
  AtMost(p, "model.ffn_dim", m.ffn_dim(), spec_bounds::kMaxFfnDim, "lower ffn_dim");
  if (m.heads() <= 0) p.Add("model.heads=", m.heads(), " must be > 0");
  if (m.d_model() > 0 && m.heads() > 0 && m.d_model() % m.heads() != 0) {
    p.Add("model.d_model=", m.d_model(), " is not divisible by model.heads=", m.heads(),
          "; choose d_model a multiple of heads");
  }
  CheckLayers(m, p);
  AtMost(p, "model.encoder_layers", m.encoder_layers(), spec_bounds::kMaxLayersPerStack,
         "use fewer encoder layers");
  AtMost(p, "model.decoder_layers", m.decoder_layers(), spec_bounds::kMaxLayersPerStack,
         "use fewer decoder layers");
  if (m.activation() != GELU && m.activation() != RELU) {
    p.Add("model.activation=", static_cast<int>(m.activation()), " is not GELU or RELU");
  }
  const std::pair<const char*, float> probabilities[] = {
      {"attention_dropout", m.attention_dropout()},
      {"activation_dropout", m.activation_dropout()},
      {"residual_dropout", m.residual_dropout()},
      {"label_smoothing", m.label_smoothing()},
  };
  for (const auto& [field, value] : probabilities) {
    if (!InUnit(value)) p.Add("model.", field, "=", value, " must be in [0, 1)");
  }
  if (m.max_positions() <= 0) {
    p.Add("model.max_positions=", m.max_positions(), " must be > 0 (0 means 1024)");
  }
  AtMost(p, "model.max_positions", m.max_positions(), spec_bounds::kMaxPositions,
         "lower max_positions (the longest sequence, <s> and </s> included)");
  if (!(m.layer_norm_eps() > 0) || !(m.layer_norm_eps() <= spec_bounds::kMaxLayerNormEps)) {
    p.Add("model.layer_norm_eps=", m.layer_norm_eps(), " must be in (0, ",
          spec_bounds::kMaxLayerNormEps, "] (0 means 1e-5)");
  }
}

// Field ranges of the corpus and validation blocks; whether the corpus and
// the named languages exist is checked when the data is opened.
void CheckCorpus(const TrainConfig& t, const ModelSpec& m, SpecProblems& p) {
  const CorpusData& c = t.corpus();
  if (c.dir().empty()) {
    if (t.validation().directions_size() > 0) {
      p.Add("train.validation.directions needs a corpus: set train.corpus.dir");
    }
    return;
  }
  if (m.kind() == ENCODER_ONLY) {
    p.Add(
        "train.corpus needs a model that generates text: model.kind is ENCODER_ONLY; use "
        "ENCODER_DECODER or DECODER_ONLY");
  }
  if (!(c.temperature() >= spec_bounds::kMinCorpusTemperature) || !std::isfinite(c.temperature())) {
    p.Add("train.corpus.temperature=", c.temperature(),
          " must be a finite number >= ", spec_bounds::kMinCorpusTemperature,
          " (5 when unset); below it pairs^(1/T) overflows, and T near 0 already samples only "
          "the largest directions");
  }
  if (c.min_pairs() < 1) p.Add("train.corpus.min_pairs=", c.min_pairs(), " must be >= 1");
  if (c.max_length() < 1) {
    p.Add("train.corpus.max_length=", c.max_length(), " must be >= 1");
  } else if (m.kind() == DECODER_ONLY && m.max_positions() > 0 &&
             2 * int64_t{c.max_length()} + 1 > m.max_positions()) {
    p.Add("train.corpus.max_length=", c.max_length(),
          ": a decoder-only model reads source, <s> and target as one sequence, and 2 x ",
          c.max_length(), " + 1 exceeds model.max_positions=", m.max_positions(),
          "; lower max_length or raise max_positions");
  } else if (m.max_positions() > 0 && int64_t{c.max_length()} + 2 > m.max_positions()) {
    p.Add("train.corpus.max_length=", c.max_length(),
          " + 2 (<s>, </s>) exceeds model.max_positions=", m.max_positions(),
          "; lower max_length or raise max_positions");
  }
  if (c.vocab_sentences() < 1000) {
    p.Add("train.corpus.vocab_sentences=", c.vocab_sentences(),
          " is too few to train a vocabulary; use >= 1000 (300000 when unset)");
  }
  AtMost(p, "train.corpus.vocab_sentences", c.vocab_sentences(), spec_bounds::kMaxVocabSentences,
         "the vocabulary's sample is held in memory; a few million sentences are plenty");
  std::set<std::string> languages;
  for (const std::string& code : c.languages()) {
    if (code.empty() || code.find_first_of(" \t-,") != std::string::npos) {
      p.Add("train.corpus.languages: '", code,
            "' is not a language code (write them as in the corpus's languages.txt, e.g. pt_BR)");
    } else if (!languages.insert(code).second) {
      p.Add("train.corpus.languages: '", code, "' is listed twice");
    }
  }
  if (!languages.empty() && languages.size() < 2) {
    p.Add("train.corpus.languages lists one language; a direction needs two");
  }
  const Validation& v = t.validation();
  for (const std::string& direction : v.directions()) {
    const size_t dash = direction.find('-');
    const std::string src = direction.substr(0, dash);
    const std::string tgt = dash == std::string::npos ? "" : direction.substr(dash + 1);
    if (dash == std::string::npos || src.empty() || tgt.empty() || src == tgt ||
        tgt.find('-') != std::string::npos) {
      p.Add("train.validation.directions: '", direction,
            "' is not a direction; write \"src-tgt\", e.g. \"en-de\"");
    } else if (!languages.empty() && (!languages.count(src) || !languages.count(tgt))) {
      p.Add("train.validation.directions: '", direction,
            "' uses a language not in train.corpus.languages");
    }
  }
  if (v.sentences() < 1) p.Add("train.validation.sentences=", v.sentences(), " must be >= 1");
  AtMost(p, "train.validation.sentences", v.sentences(), spec_bounds::kMaxValidationSentences,
         "decode fewer dev sentences per direction");
  if (v.loss_sentences() < 1) {
    p.Add("train.validation.loss_sentences=", v.loss_sentences(), " must be >= 1");
  }
  AtMost(p, "train.validation.loss_sentences", v.loss_sentences(),
         spec_bounds::kMaxValidationSentences, "score fewer dev pairs per direction");
  if (v.beam_size() < 1) p.Add("train.validation.beam_size=", v.beam_size(), " must be >= 1");
  AtMost(p, "train.validation.beam_size", v.beam_size(), spec_bounds::kMaxBeamSize,
         "use a smaller beam (4 to 8 is usual)");
  if (!(v.length_penalty() >= 0 && v.length_penalty() <= spec_bounds::kMaxLengthPenalty)) {
    p.Add("train.validation.length_penalty=", v.length_penalty(), " must be in [0, ",
          spec_bounds::kMaxLengthPenalty, "]");
  }
  if (v.sample_per_group() < 0) {
    p.Add("train.validation.sample_per_group=", v.sample_per_group(), " must be >= 0 (0: off)");
  }
  AtMost(p, "train.validation.sample_per_group", v.sample_per_group(),
         spec_bounds::kMaxSamplePerGroup, "sample fewer directions per group");
}

void CheckTrain(const TrainConfig& t, const ModelSpec& m, bool has_train, SpecProblems& p) {
  if (!has_train) {
    p.Add(
        "the spec has no train { } block, so the train fields below are unset; add the block, "
        "pass --config FILE, or --set them");
  }
  if (!(t.lr() > 0) || !std::isfinite(t.lr())) {
    p.Add("train.lr=", t.lr(), " must be > 0 (the peak learning rate)");
  }
  if (t.steps() <= 0) p.Add("train.steps=", t.steps(), " must be > 0");
  AtMost(p, "train.steps", t.steps(), spec_bounds::kMaxSteps, "run fewer steps");
  if (t.tokens_per_batch() <= 0) {
    p.Add("train.tokens_per_batch=", t.tokens_per_batch(), " must be > 0");
  }
  AtMost(p, "train.tokens_per_batch", t.tokens_per_batch(), spec_bounds::kMaxTokensPerBatch,
         "use a smaller batch, or more data-parallel replicas");
  if (t.microbatches() < 1) p.Add("train.microbatches=", t.microbatches(), " must be >= 1");
  AtMost(p, "train.microbatches", t.microbatches(), spec_bounds::kMaxMicrobatches,
         "use fewer, larger micro-batches");
  if (!LrSchedule_IsValid(t.lr_schedule())) {
    p.Add("train.lr_schedule=", static_cast<int>(t.lr_schedule()),
          " is not INVERSE_SQRT, COSINE or CONSTANT");
  }
  if (!InUnit(t.adamw().beta1())) {
    p.Add("train.adamw.beta1=", t.adamw().beta1(), " must be in [0, 1)");
  }
  if (!InUnit(t.adamw().beta2())) {
    p.Add("train.adamw.beta2=", t.adamw().beta2(), " must be in [0, 1)");
  }
  // Scale-free float fields size nothing, so their bound is being finite.
  if (!(t.adamw().epsilon() > 0) || !std::isfinite(t.adamw().epsilon())) {
    p.Add("train.adamw.epsilon=", t.adamw().epsilon(), " must be > 0 and finite");
  }
  if (!(t.adamw().weight_decay() >= 0) || !std::isfinite(t.adamw().weight_decay())) {
    p.Add("train.adamw.weight_decay=", t.adamw().weight_decay(), " must be >= 0 and finite");
  }
  if (!(t.clip_norm() >= 0) || !std::isfinite(t.clip_norm())) {
    p.Add("train.clip_norm=", t.clip_norm(), " must be >= 0 and finite (0 disables)");
  }
  if (t.warmup_steps() < 0) p.Add("train.warmup_steps=", t.warmup_steps(), " must be >= 0");
  if (!(t.min_lr() >= 0 && t.min_lr() <= t.lr())) {
    p.Add("train.min_lr=", t.min_lr(), " must be in [0, train.lr=", t.lr(), "]");
  }
  const std::pair<const char*, int> intervals[] = {
      {"log_interval", t.log_interval()},
      {"eval_interval", t.eval_interval()},
      {"checkpoint_interval", t.checkpoint_interval()},
      {"layer_stats_interval", t.layer_stats_interval()},
      {"early_update_steps", t.early_update_steps()},
  };
  for (const auto& [field, value] : intervals) {
    if (value < 0) p.Add("train.", field, "=", value, " must be >= 0 (0 disables)");
  }
  const SyntheticData& s = t.synthetic();
  if (!SyntheticTask_IsValid(s.task())) {
    p.Add("train.synthetic.task=", static_cast<int>(s.task()), " is not REVERSE or COPY");
  }
  if (s.min_length() < 1) p.Add("train.synthetic.min_length=", s.min_length(), " must be >= 1");
  if (s.min_length() > s.max_length()) {
    p.Add("train.synthetic.min_length=", s.min_length(), " is above max_length=", s.max_length(),
          " (0 means 12); lower min_length or raise max_length");
  }
  // With a bad vocab_size (reported already) the alphabet cannot be judged.
  if (m.vocab_size() > 4 && (s.alphabet() < 0 || s.alphabet() > m.vocab_size() - 4)) {
    p.Add("train.synthetic.alphabet=", s.alphabet(),
          " must be in [0, model.vocab_size - 4 = ", m.vocab_size() - 4,
          "] (0 means every non-special id)");
  }
  if (m.max_positions() > 0 && m.max_positions() < int64_t{s.max_length()} + 2) {
    p.Add("model.max_positions=", m.max_positions(),
          " is shorter than train.synthetic.max_length=", s.max_length(),
          " + 2 (<s> and </s>); raise max_positions or lower max_length");
  } else if (m.kind() == DECODER_ONLY && t.corpus().dir().empty() && m.max_positions() > 0 &&
             2 * int64_t{s.max_length()} + 1 > m.max_positions()) {
    // The synthetic task trains only where no corpus is given.
    p.Add("model.max_positions=", m.max_positions(),
          " is shorter than a decoder-only model's synthetic sequence: source, <s> and target, "
          "2 x train.synthetic.max_length=",
          s.max_length(), " + 1; raise max_positions or lower max_length");
  }
  if (t.dtype() != "f32" && t.dtype() != "f64" && t.dtype() != "bf16") {
    p.Add("train.dtype=\"", t.dtype(), "\" is not \"f32\", \"f64\" or \"bf16\"");
  }
  if (t.dtype() == "bf16" && t.device() != "cuda") {
    p.Add(
        "train.dtype=\"bf16\" needs train.device=\"cuda\" (the CPU and the emulated device "
        "compute in f32 or f64)");
  }
  if (!t.device().empty() && t.device() != "cpu" && t.device() != "cuda" &&
      t.device() != "emulated") {
    p.Add("train.device=\"", t.device(), "\" is not \"cpu\", \"cuda\" or \"emulated\"");
  }
  if (t.device() == "cuda" && t.dtype() == "f64") {
    p.Add(
        "train.device=\"cuda\" computes in bf16 or f32, not f64; set train.dtype=\"bf16\" or "
        "\"f32\"");
  }
  if (t.keep_checkpoints() < 1) {
    p.Add("train.keep_checkpoints=", t.keep_checkpoints(), " must be >= 1 (3 when unset)");
  }
  AtMost(p, "train.keep_checkpoints", t.keep_checkpoints(), spec_bounds::kMaxKeepCheckpoints,
         "keep fewer checkpoints");
  if (t.max_skipped_steps() < 1) {
    p.Add("train.max_skipped_steps=", t.max_skipped_steps(), " must be >= 1 (5 when unset)");
  }
  if (t.comm_timeout_s() < -1 || t.comm_timeout_s() > 604800) {
    p.Add("train.comm_timeout_s=", t.comm_timeout_s(),
          " must be -1 (off) or 1..604800 seconds (1800 when unset)");
  }
  CheckCorpus(t, m, p);
}

}  // namespace

absl::Status ValidateModelSpec(const ModelSpec& model, const std::string& filename,
                               absl::Span<const SpecCheck> checks) {
  RunSpec effective;
  *effective.mutable_model() = model;
  ApplyDefaults(&effective);
  SpecProblems problems(filename);
  CheckModel(effective.model(), problems);
  for (SpecCheck check : checks) check(effective, problems);
  return problems.ToStatus();
}

absl::Status ValidateRunSpec(const RunSpec& spec, const std::string& filename,
                             absl::Span<const SpecCheck> checks) {
  RunSpec effective = spec;
  ApplyDefaults(&effective);
  SpecProblems problems(filename);
  CheckModel(effective.model(), problems);
  CheckTrain(effective.train(), effective.model(), spec.has_train(), problems);
  for (SpecCheck check : checks) check(effective, problems);
  return problems.ToStatus();
}

absl::StatusOr<ResidualNorm> NormForLayer(const ModelSpec& model, Stack stack, int layer) {
  if (stack != ENCODER && stack != DECODER) {
    return absl::InvalidArgumentError(
        absl::StrCat("NormForLayer: stack must be ENCODER or DECODER, got ", Stack_Name(stack)));
  }
  const int depth = Depth(model, stack);
  if (layer < 0 || layer >= depth) {
    return absl::InvalidArgumentError(absl::StrCat("NormForLayer: ", StackName(stack), " layer ",
                                                   layer, " is outside 0..", depth - 1));
  }
  ResidualNorm norm = model.norm();
  for (const NormOverride& o : model.norm_override()) {
    if (Covers(o, stack) && o.first_layer() <= layer && layer <= o.last_layer()) norm = o.norm();
  }
  if (norm == RESIDUAL_NORM_UNSPECIFIED || !ResidualNorm_IsValid(norm)) {
    return absl::InvalidArgumentError(absl::StrCat("NormForLayer: ", StackName(stack), " layer ",
                                                   layer, " has no valid norm (", NormName(norm),
                                                   "); set model.norm"));
  }
  return norm;
}

}  // namespace pipetrain
