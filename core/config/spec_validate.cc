// Semantic checks of a RunSpec and the per-layer norm lookup they share with
// the model builder. Every problem is collected (a user fixes a spec once,
// not once per error) and each names the field, its value and what is allowed.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/spec_loader.h"

namespace pipetrain {
namespace {

class Problems {
 public:
  explicit Problems(const std::string& filename) : file_(filename.empty() ? "<spec>" : filename) {}

  template <typename... Parts>
  void Add(const Parts&... parts) {
    lines_.push_back(absl::StrCat(file_, ": ", parts...));
  }

  absl::Status ToStatus() const {
    if (lines_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

std::string NormName(ResidualNorm norm) {
  return ResidualNorm_IsValid(norm) ? ResidualNorm_Name(norm)
                                    : absl::StrCat(static_cast<int>(norm));
}

std::string KindName(ModelKind kind) {
  return ModelKind_IsValid(kind) ? ModelKind_Name(kind) : absl::StrCat(static_cast<int>(kind));
}

int Depth(const ModelSpec& m, Stack stack) {
  return stack == ENCODER ? m.encoder_layers() : m.decoder_layers();
}

const char* StackName(Stack stack) { return stack == ENCODER ? "encoder" : "decoder"; }

bool Covers(const NormOverride& o, Stack stack) {
  return o.stack() == STACK_UNSPECIFIED || o.stack() == stack;
}

// Norms some layer of `stack` may use: the main norm and every override that
// indexes the stack. Empty when the model has no such stack.
std::set<ResidualNorm> NormsOfStack(const ModelSpec& m, Stack stack) {
  std::set<ResidualNorm> norms;
  if (Depth(m, stack) <= 0) return norms;
  norms.insert(m.norm());
  for (const NormOverride& o : m.norm_override()) {
    if (Covers(o, stack)) norms.insert(o.norm());
  }
  return norms;
}

bool HasAlpha(ResidualNorm n) { return n == DEEPNORM || n == FOUNDATION_LN || n == UPSCALE_LN; }

std::string NormsText(const std::set<ResidualNorm>& norms) {
  std::vector<std::string> names;
  for (ResidualNorm n : norms) names.push_back(NormName(n));
  return absl::StrJoin(names, ", ");
}

bool InUnit(double x) { return x >= 0 && x < 1; }  // false for NaN too

void CheckAlphaBeta(const ModelSpec& m, Problems& p) {
  struct Constant {
    const char* field;
    bool set;
    float value;
    Stack stack;
    bool beta;
  };
  const Constant constants[] = {
      {"encoder_alpha", m.has_encoder_alpha(), m.encoder_alpha(), ENCODER, false},
      {"decoder_alpha", m.has_decoder_alpha(), m.decoder_alpha(), DECODER, false},
      {"encoder_beta", m.has_encoder_beta(), m.encoder_beta(), ENCODER, true},
      {"decoder_beta", m.has_decoder_beta(), m.decoder_beta(), DECODER, true},
  };
  for (const Constant& c : constants) {
    if (!c.set) continue;
    const std::set<ResidualNorm> norms = NormsOfStack(m, c.stack);
    const std::string field = absl::StrCat("model.", c.field, "=", c.value);
    if (norms.empty()) {
      p.Add(field, " is set but the model (", KindName(m.kind()), ") has no ", StackName(c.stack),
            " layers; remove it");
      continue;
    }
    const bool used =
        c.beta ? norms.count(DEEPNORM) > 0 : std::any_of(norms.begin(), norms.end(), HasAlpha);
    if (!used) {
      p.Add(field, " is set but no ", StackName(c.stack), " layer uses ",
            c.beta
                ? "DEEPNORM (the only norm with an init gain beta)"
                : "DEEPNORM, FOUNDATION_LN or UPSCALE_LN (the norms with a residual scale alpha)",
            "; its layers use ", NormsText(norms), ". Remove it or change the norm");
    } else if (!(c.value > 0) || !std::isfinite(c.value)) {
      p.Add(field, " must be a finite number > 0");
    }
  }
}

void CheckBranchNorm(const ModelSpec& m, Problems& p) {
  std::set<ResidualNorm> all = NormsOfStack(m, ENCODER);
  all.merge(NormsOfStack(m, DECODER));
  const BranchNorm& b = m.branch_norm();
  if (all.count(BRANCHNORM) == 0) {
    if (b.ByteSizeLong() > 0) {
      p.Add("model.branch_norm is set but no layer uses BRANCHNORM (layers use ", NormsText(all),
            "); remove the block, or set norm: BRANCHNORM or a norm_override to it");
    }
    return;
  }
  if (!BranchNormShape_IsValid(b.shape())) {
    p.Add("model.branch_norm.shape=", static_cast<int>(b.shape()),
          " is not a BranchNormShape; use LINEAR_SCALE or NORMALIZED_POWER");
  }
  if (b.max_norm_step() <= 0) {
    p.Add("model.branch_norm.max_norm_step=", b.max_norm_step(),
          " must be > 0 when BRANCHNORM is used: it is the step at which the branch rescaling "
          "ends");
  }
  if (b.shape() == NORMALIZED_POWER) {
    if (b.start_scale() != 0) {
      p.Add("model.branch_norm.start_scale=", b.start_scale(),
            " has no effect with shape NORMALIZED_POWER (it is a(0) of LINEAR_SCALE); remove it");
    }
  } else if (!(b.start_scale() >= 0 && b.start_scale() <= 1)) {
    p.Add("model.branch_norm.start_scale=", b.start_scale(),
          " must be in [0, 1] (the branch scale a(0) at step 0)");
  }
}

void CheckOverrides(const ModelSpec& m, Problems& p) {
  for (int i = 0; i < m.norm_override_size(); ++i) {
    const NormOverride& o = m.norm_override(i);
    const std::string at = absl::StrCat("model.norm_override[", i, "]");
    if (o.norm() == RESIDUAL_NORM_UNSPECIFIED) {
      p.Add(at, ".norm is not set; name the norm the layers in the range get, e.g. norm: PRE_LN");
    } else if (!ResidualNorm_IsValid(o.norm())) {
      p.Add(at, ".norm=", static_cast<int>(o.norm()), " is not a ResidualNorm");
    }
    if (!Stack_IsValid(o.stack())) {
      p.Add(at, ".stack=", static_cast<int>(o.stack()),
            " is not a Stack; use ENCODER, DECODER, or leave it unset for both");
      continue;
    }
    if (o.first_layer() < 0) p.Add(at, ".first_layer=", o.first_layer(), " must be >= 0");
    if (o.first_layer() > o.last_layer()) {
      p.Add(at, ".first_layer=", o.first_layer(), " is after last_layer=", o.last_layer(),
            "; the range is inclusive, so first_layer <= last_layer");
    }
    for (Stack stack : {ENCODER, DECODER}) {
      if (o.stack() != STACK_UNSPECIFIED && o.stack() != stack) continue;
      const int depth = Depth(m, stack);
      if (depth <= 0) {
        if (o.stack() == stack) {
          p.Add(at, ".stack=", Stack_Name(stack), " but the model (", KindName(m.kind()),
                ") has no ", StackName(stack), " layers; use the stack the model has");
        }
        continue;
      }
      if (o.last_layer() >= depth) {
        p.Add(at, ".last_layer=", o.last_layer(), " is outside the ", StackName(stack), "'s ",
              depth, " layers (valid 0..", depth - 1, ")",
              o.stack() == STACK_UNSPECIFIED
                  ? "; with stack unset the range applies to both stacks, so set stack"
                  : "");
      }
    }
  }
}

void CheckLayers(const ModelSpec& m, Problems& p) {
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

void CheckModel(const ModelSpec& m, Problems& p) {
  if (m.kind() == MODEL_KIND_UNSPECIFIED || !ModelKind_IsValid(m.kind())) {
    p.Add("model.kind=", KindName(m.kind()),
          " is not a model kind; set kind: ENCODER_DECODER, DECODER_ONLY or ENCODER_ONLY");
  }
  if (m.norm() == RESIDUAL_NORM_UNSPECIFIED || !ResidualNorm_IsValid(m.norm())) {
    p.Add("model.norm=", NormName(m.norm()),
          " is not a residual norm; set norm: POST_LN, PRE_LN, DEEPNORM, BRANCHNORM, NORMFORMER, "
          "FOUNDATION_LN, UPSCALE_LN or SUBLN");
  }
  if (m.vocab_size() <= 4) {
    p.Add("model.vocab_size=", m.vocab_size(),
          " must be > 4 (ids 0..3 are <pad>, <s>, </s>, <unk>)");
  }
  if (m.d_model() <= 0) p.Add("model.d_model=", m.d_model(), " must be > 0");
  if (m.ffn_dim() <= 0) p.Add("model.ffn_dim=", m.ffn_dim(), " must be > 0");
  if (m.heads() <= 0) p.Add("model.heads=", m.heads(), " must be > 0");
  if (m.d_model() > 0 && m.heads() > 0 && m.d_model() % m.heads() != 0) {
    p.Add("model.d_model=", m.d_model(), " is not divisible by model.heads=", m.heads(),
          "; choose d_model a multiple of heads");
  }
  CheckLayers(m, p);
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
  if (!(m.layer_norm_eps() > 0) || !std::isfinite(m.layer_norm_eps())) {
    p.Add("model.layer_norm_eps=", m.layer_norm_eps(), " must be > 0 (0 means 1e-5)");
  }
  CheckAlphaBeta(m, p);
  CheckBranchNorm(m, p);
  CheckOverrides(m, p);
}

bool OneOf(const std::string& value, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (value == a) return true;
  }
  return false;
}

// Values are checked as their defaults when unset (0 or empty).
void CheckPipeline(const TrainConfig& t, const ModelSpec& m, Problems& p) {
  const PipelineConfig& pipe = t.pipeline();
  const int stages = pipe.stages() == 0 ? 1 : pipe.stages();
  const int chunks = pipe.chunks() == 0 ? 1 : pipe.chunks();
  const std::string schedule = pipe.schedule().empty() ? "1f1b" : pipe.schedule();
  const std::string partition = pipe.partition().empty() ? "uniform" : pipe.partition();
  const int layers = m.encoder_layers() + m.decoder_layers();
  if (stages < 1) p.Add("train.pipeline.stages=", pipe.stages(), " must be >= 1");
  if (chunks < 1) p.Add("train.pipeline.chunks=", pipe.chunks(), " must be >= 1");
  if (t.data_parallel() < 0) {
    p.Add("train.data_parallel=", t.data_parallel(), " must be >= 1 (0 means 1)");
  }
  if (!OneOf(schedule, {"gpipe", "1f1b", "interleaved"})) {
    p.Add("train.pipeline.schedule=\"", pipe.schedule(),
          "\" is not a schedule; use gpipe, 1f1b or interleaved");
  }
  if (schedule != "interleaved" && chunks != 1) {
    p.Add("train.pipeline.chunks=", chunks, " needs train.pipeline.schedule=interleaved");
  }
  const int microbatches = t.microbatches() == 0 ? 1 : t.microbatches();
  if (schedule == "interleaved" && stages >= 1 && microbatches % stages != 0) {
    p.Add("train.microbatches=", microbatches,
          " must be a multiple of train.pipeline.stages=", stages, " for the interleaved schedule");
  }
  if (stages >= 1 && chunks >= 1 && layers > 0 && stages * chunks > layers) {
    p.Add("train.pipeline.stages=", stages, " x chunks=", chunks, " virtual stages exceed the ",
          layers, " layers of the model; every virtual stage needs at least one layer");
  }
  if (!OneOf(partition, {"uniform", "balanced", "explicit"})) {
    p.Add("train.pipeline.partition=\"", pipe.partition(),
          "\" is not a partition; use uniform, balanced or explicit");
  }
  if (partition == "explicit") {
    if (pipe.boundaries_size() != stages * chunks - 1) {
      p.Add("train.pipeline.boundaries has ", pipe.boundaries_size(),
            " entries; partition=explicit", " needs stages x chunks - 1 = ", stages * chunks - 1,
            " (the first layer of every virtual stage after the first)");
    }
    int previous = 0;
    for (int i = 0; i < pipe.boundaries_size(); ++i) {
      const int b = pipe.boundaries(i);
      if (b <= previous || b >= layers) {
        p.Add("train.pipeline.boundaries[", i, "]=", b, " must be ascending and inside (0, ",
              layers, ")");
      }
      previous = b;
    }
  } else if (pipe.boundaries_size() > 0) {
    p.Add("train.pipeline.boundaries is set but partition is ", partition,
          "; set partition=explicit or drop the boundaries");
  }
  auto check_recompute = [&](const std::string& field, const std::string& value) {
    if (!value.empty() && !OneOf(value, {"none", "full", "every"})) {
      p.Add("train.pipeline.", field, "=\"", value, "\" is not a policy; use none, full or every");
    }
  };
  check_recompute("recompute", pipe.recompute());
  for (int i = 0; i < pipe.stage_recompute_size(); ++i) {
    check_recompute(absl::StrCat("stage_recompute[", i, "]"), pipe.stage_recompute(i));
  }
  if (pipe.stage_recompute_size() > 0 && pipe.stage_recompute_size() != stages * chunks) {
    p.Add("train.pipeline.stage_recompute has ", pipe.stage_recompute_size(),
          " entries; give one per virtual stage (", stages * chunks, ")");
  }
  bool every = pipe.recompute() == "every";
  for (const std::string& r : pipe.stage_recompute()) every = every || r == "every";
  if (every && pipe.recompute_every() < 1) {
    p.Add("train.pipeline.recompute_every=", pipe.recompute_every(),
          " must be >= 1 when a recompute policy is \"every\"");
  }
}

// Field ranges of the corpus and validation blocks; whether the corpus and
// the named languages exist is checked when the data is opened.
void CheckCorpus(const TrainConfig& t, const ModelSpec& m, Problems& p) {
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
  if (!(c.temperature() > 0) || !std::isfinite(c.temperature())) {
    p.Add("train.corpus.temperature=", c.temperature(), " must be > 0 (5 when unset)");
  }
  if (c.min_pairs() < 1) p.Add("train.corpus.min_pairs=", c.min_pairs(), " must be >= 1");
  if (c.max_length() < 1) {
    p.Add("train.corpus.max_length=", c.max_length(), " must be >= 1");
  } else if (m.kind() == DECODER_ONLY && m.max_positions() > 0 &&
             2 * c.max_length() + 1 > m.max_positions()) {
    p.Add("train.corpus.max_length=", c.max_length(),
          ": a decoder-only model reads source, <s> and target as one sequence, and 2 x ",
          c.max_length(), " + 1 exceeds model.max_positions=", m.max_positions(),
          "; lower max_length or raise max_positions");
  } else if (m.max_positions() > 0 && c.max_length() + 2 > m.max_positions()) {
    p.Add("train.corpus.max_length=", c.max_length(),
          " + 2 (<s>, </s>) exceeds model.max_positions=", m.max_positions(),
          "; lower max_length or raise max_positions");
  }
  if (c.vocab_sentences() < 1000) {
    p.Add("train.corpus.vocab_sentences=", c.vocab_sentences(),
          " is too few to train a vocabulary; use >= 1000 (300000 when unset)");
  }
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
  if (v.loss_sentences() < 1) {
    p.Add("train.validation.loss_sentences=", v.loss_sentences(), " must be >= 1");
  }
  if (v.beam_size() < 1) p.Add("train.validation.beam_size=", v.beam_size(), " must be >= 1");
  if (!(v.length_penalty() >= 0)) {
    p.Add("train.validation.length_penalty=", v.length_penalty(), " must be >= 0");
  }
}

void CheckTrain(const TrainConfig& t, const ModelSpec& m, bool has_train, Problems& p) {
  if (!has_train) {
    p.Add(
        "the spec has no train { } block, so the train fields below are unset; add the block, "
        "pass --config FILE, or --set them");
  }
  if (!(t.lr() > 0) || !std::isfinite(t.lr())) {
    p.Add("train.lr=", t.lr(), " must be > 0 (the peak learning rate)");
  }
  if (t.steps() <= 0) p.Add("train.steps=", t.steps(), " must be > 0");
  if (t.tokens_per_batch() <= 0) {
    p.Add("train.tokens_per_batch=", t.tokens_per_batch(), " must be > 0");
  }
  if (t.microbatches() < 1) p.Add("train.microbatches=", t.microbatches(), " must be >= 1");
  CheckPipeline(t, m, p);
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
  if (!(t.adamw().epsilon() > 0)) {
    p.Add("train.adamw.epsilon=", t.adamw().epsilon(), " must be > 0");
  }
  if (!(t.adamw().weight_decay() >= 0)) {
    p.Add("train.adamw.weight_decay=", t.adamw().weight_decay(), " must be >= 0");
  }
  if (!(t.clip_norm() >= 0)) p.Add("train.clip_norm=", t.clip_norm(), " must be >= 0 (0 disables)");
  if (t.warmup_steps() < 0) p.Add("train.warmup_steps=", t.warmup_steps(), " must be >= 0");
  if (!(t.min_lr() >= 0 && t.min_lr() <= t.lr())) {
    p.Add("train.min_lr=", t.min_lr(), " must be in [0, train.lr=", t.lr(), "]");
  }
  const std::pair<const char*, int> intervals[] = {
      {"log_interval", t.log_interval()},
      {"eval_interval", t.eval_interval()},
      {"checkpoint_interval", t.checkpoint_interval()},
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
  if (m.max_positions() > 0 && m.max_positions() < s.max_length() + 2) {
    p.Add("model.max_positions=", m.max_positions(),
          " is shorter than train.synthetic.max_length=", s.max_length(),
          " + 2 (<s> and </s>); raise max_positions or lower max_length");
  }
  if (t.dtype() != "f32" && t.dtype() != "f64" && t.dtype() != "bf16") {
    p.Add("train.dtype=\"", t.dtype(), "\" is not \"f32\", \"f64\" or \"bf16\"");
  }
  if (t.dtype() == "bf16" && t.device() != "cuda") {
    p.Add("train.dtype=\"bf16\" needs train.device=\"cuda\" (the CPU computes in f32 or f64)");
  }
  if (!t.device().empty() && t.device() != "cpu" && t.device() != "cuda") {
    p.Add("train.device=\"", t.device(), "\" is not \"cpu\" or \"cuda\"");
  }
  if (t.device() == "cuda" && (t.pipeline().stages() > 1 || t.data_parallel() > 1)) {
    p.Add(
        "train.device=\"cuda\" runs one process for now; pipeline and data-parallel runs on "
        "GPUs (NCCL) are not wired into the trainer yet");
  }
  if (t.device() == "cuda" && t.dtype() == "f64") {
    p.Add(
        "train.device=\"cuda\" computes in bf16 or f32, not f64; set train.dtype=\"bf16\" or "
        "\"f32\"");
  }
  if (t.keep_checkpoints() < 1) {
    p.Add("train.keep_checkpoints=", t.keep_checkpoints(), " must be >= 1 (3 when unset)");
  }
  CheckCorpus(t, m, p);
}

}  // namespace

absl::Status ValidateModelSpec(const ModelSpec& model, const std::string& filename) {
  RunSpec effective;
  *effective.mutable_model() = model;
  ApplyDefaults(&effective);
  Problems problems(filename);
  CheckModel(effective.model(), problems);
  return problems.ToStatus();
}

absl::Status ValidateRunSpec(const RunSpec& spec, const std::string& filename) {
  RunSpec effective = spec;
  ApplyDefaults(&effective);
  Problems problems(filename);
  CheckModel(effective.model(), problems);
  CheckTrain(effective.train(), effective.model(), spec.has_train(), problems);
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
