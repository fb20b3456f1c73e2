// Turning a spec file (plus an optional --config file and --set overrides)
// into the one resolved, validated RunSpec a run uses.
#include "core/config/spec_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

bool UsesBranchNorm(const ModelSpec& m) {
  if (m.norm() == BRANCHNORM) return true;
  for (const NormOverride& o : m.norm_override()) {
    if (o.norm() == BRANCHNORM) return true;
  }
  return false;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " '", path, "': ", std::strerror(errno)));
  }
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " '", path, "': ", std::strerror(error)));
  }
  return text;
}

}  // namespace

void ApplyDefaults(RunSpec* spec) {
  ModelSpec& m = *spec->mutable_model();
  if (m.max_positions() == 0) m.set_max_positions(1024);
  if (m.layer_norm_eps() == 0) m.set_layer_norm_eps(1e-5f);
  if (m.activation() == ACTIVATION_UNSPECIFIED) m.set_activation(GELU);
  if (!m.has_tied_embeddings()) m.set_tied_embeddings(true);
  if (UsesBranchNorm(m)) {
    BranchNorm& b = *m.mutable_branch_norm();
    if (b.shape() == BRANCH_NORM_SHAPE_UNSPECIFIED) b.set_shape(LINEAR_SCALE);
    if (b.shape() == LINEAR_SCALE && b.start_scale() == 0) b.set_start_scale(0.1f);
  }

  TrainConfig& t = *spec->mutable_train();
  AdamW& adamw = *t.mutable_adamw();
  if (adamw.beta1() == 0) adamw.set_beta1(0.9f);
  if (adamw.beta2() == 0) adamw.set_beta2(0.98f);
  if (adamw.epsilon() == 0) adamw.set_epsilon(1e-8f);
  if (t.lr_schedule() == LR_SCHEDULE_UNSPECIFIED) t.set_lr_schedule(INVERSE_SQRT);
  if (t.microbatches() == 0) t.set_microbatches(1);
  if (t.log_interval() == 0) t.set_log_interval(1);
  if (t.dtype().empty()) t.set_dtype("f32");
  if (t.device().empty()) t.set_device("cpu");
  if (t.data_parallel() == 0) t.set_data_parallel(1);
  if (t.output_dir().empty()) {
    t.set_output_dir(absl::StrCat("runs/", m.name().empty() ? "unnamed" : m.name()));
  }
  if (t.keep_checkpoints() == 0) t.set_keep_checkpoints(3);
  if (t.max_skipped_steps() == 0) t.set_max_skipped_steps(5);
  if (t.comm_timeout_s() == 0) t.set_comm_timeout_s(1800);
  PipelineConfig& pipe = *t.mutable_pipeline();
  if (pipe.stages() == 0) pipe.set_stages(1);
  if (pipe.chunks() == 0) pipe.set_chunks(1);
  if (pipe.schedule() == PIPELINE_SCHEDULE_UNSPECIFIED) pipe.set_schedule(SCHEDULE_1F1B);
  if (pipe.partition().empty()) pipe.set_partition("uniform");
  if (pipe.recompute().empty()) pipe.set_recompute("none");
  SyntheticData& s = *t.mutable_synthetic();
  if (s.task() == SYNTHETIC_TASK_UNSPECIFIED) s.set_task(REVERSE);
  if (s.min_length() == 0) s.set_min_length(4);
  if (s.max_length() == 0) s.set_max_length(12);
  // Corpus defaults only where a corpus is used, so synthetic runs resolve
  // to the same text as before.
  if (!t.corpus().dir().empty()) {
    CorpusData& c = *t.mutable_corpus();
    if (c.min_pairs() == 0) c.set_min_pairs(1);
    if (c.temperature() == 0) c.set_temperature(5);
    if (c.max_length() == 0) {
      // A decoder-only model reads source, <s> and target as one sequence.
      // In int64: validation reports a max_positions near INT32_MIN, but
      // this runs before it and must not overflow on the way.
      const int64_t positions = spec->model().max_positions();
      const int64_t length = m.kind() == DECODER_ONLY ? (positions - 1) / 2 : positions - 2;
      c.set_max_length(static_cast<int32_t>(std::max<int64_t>(length, INT32_MIN)));
    }
    if (c.vocab_sentences() == 0) c.set_vocab_sentences(300000);
    Validation& v = *t.mutable_validation();
    if (v.sentences() == 0) v.set_sentences(100);
    if (v.loss_sentences() == 0) v.set_loss_sentences(200);
    if (v.beam_size() == 0) v.set_beam_size(1);
  }
}

absl::StatusOr<RunSpec> LoadRunSpec(const std::string& spec_path, const std::string& config_path,
                                    const std::vector<std::string>& overrides,
                                    absl::Span<const SpecCheck> checks) {
  PT_ASSIGN_OR_RETURN(const std::string spec_text, ReadFile(spec_path, "spec file"));
  PT_ASSIGN_OR_RETURN(RunSpec spec, ParseRunSpecText(spec_text, spec_path));
  std::string label = spec_path;
  if (!config_path.empty()) {
    PT_ASSIGN_OR_RETURN(const std::string config_text, ReadFile(config_path, "config file"));
    PT_ASSIGN_OR_RETURN(const TrainConfig config, ParseTrainConfigText(config_text, config_path));
    spec.mutable_train()->MergeFrom(config);
    label = absl::StrCat(spec_path, " + ", config_path);
  }
  for (const std::string& assignment : overrides) {
    PT_RETURN_IF_ERROR(ApplyOverride(&spec, assignment));
  }
  // Validation sees the spec before defaults fill it so that it can tell a
  // missing train block from a bad one; it checks the defaulted values anyway.
  PT_RETURN_IF_ERROR(ValidateRunSpec(spec, label, checks));
  ApplyDefaults(&spec);
  return spec;
}

}  // namespace pipetrain
