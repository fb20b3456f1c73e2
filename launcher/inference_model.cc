#include "launcher/inference_model.h"

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/spec_loader.h"
#include "core/data/token_shards.h"
#include "core/data/vocab_checksum.h"
#include "core/io/atomic_file.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "launcher/model_memory.h"
#include "launcher/run_spec_checks.h"
#include "launcher/trainer/corpus_preparation.h"
#include "models/checkpoint.h"

namespace pipetrain {
namespace {

// A vocabulary's bytes are checked before it is parsed: a SentencePiece
// model with a flipped bit often still parses, and would decode other
// pieces. A run's copy has its checksum file beside it; a shard directory's
// vocabulary is vouched for by the shards' sealed manifest.
absl::Status CheckVocabularyBytes(const std::string& path, const RunSpec& spec, bool run_copy) {
  const std::string trained_with =
      spec.train().corpus().dir().empty() ? std::string() : CorpusVocabPath(spec);
  const std::string remedy =
      trained_with.empty()
          ? std::string(
                "restore it from a copy, or pass the vocabulary the model was trained "
                "with as --vocab FILE")
          : absl::StrCat("restore it from a copy of the vocabulary the model was trained with (",
                         trained_with,
                         ", unless its corpus was rebuilt since), or pass that file "
                         "as --vocab FILE");
  PT_ASSIGN_OR_RETURN(const VocabCheck check, CheckVocabChecksum(path, remedy));
  if (check == VocabCheck::kVerified) return absl::OkStatus();
  const std::string dir = ParentDirectory(path);
  std::error_code error;
  if (std::filesystem::exists(absl::StrCat(dir, "/", kShardManifestName), error)) {
    PT_ASSIGN_OR_RETURN(const CorpusShards shards, CorpusShards::Open(dir));
    return shards.CheckVocabulary(path);
  }
  if (run_copy) {
    LogWarning("data",
               "%s has no checksum file %s (the run was started before pipetrain kept one): "
               "the vocabulary cannot be checked for damage. Running `pipetrain train` on this "
               "run again writes one",
               path, VocabChecksumPath(path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& ckpt,
                                                  const std::string& vocab_path) {
  PT_CHECK_ARG(!ckpt.empty(),
               "--ckpt is required: a run directory (e.g. runs/demo) or one of its "
               "step_N directories");
  PT_ASSIGN_OR_RETURN(const CheckpointReader reader, CheckpointReader::Open(ckpt));
  InferenceModel loaded;
  loaded.spec = reader.manifest().spec();
  loaded.step = reader.step();
  loaded.checkpoint_dir = reader.step_dir();
  // The checkpoint's spec sizes every buffer below: bound its fields and
  // the model's memory before building it, as train does for a spec file.
  const std::string what = absl::StrCat("the model of ", loaded.checkpoint_dir);
  PT_RETURN_IF_ERROR(ValidateModelSpec(
      loaded.spec.model(), absl::StrCat(loaded.checkpoint_dir, " (its spec)"), RunSpecChecks()));
  PT_RETURN_IF_ERROR(CheckModelFitsHostMemory(loaded.spec, ModelUse::kInference, what));
  PT_ASSIGN_OR_RETURN(loaded.model,
                      TransformerModel::Create(loaded.spec.model(), DType::kF32, /*seed=*/0));
  PT_RETURN_IF_ERROR(LoadParameterStore(reader, &loaded.model->params(), nullptr, nullptr));

  std::vector<std::string> candidates;
  if (!vocab_path.empty()) {
    candidates.push_back(vocab_path);
  } else {
    // The run directory is the step directory's parent.
    // The run directory is the step directory's parent ("runs/demo/step_1200/"
    // and "." inside it included).
    std::error_code error;
    std::filesystem::path step_dir =
        std::filesystem::absolute(reader.step_dir(), error).lexically_normal();
    if (step_dir.filename().empty()) step_dir = step_dir.parent_path();
    const std::filesystem::path run_dir = step_dir.parent_path();
    candidates.push_back(RunVocabPath(run_dir.string()));
    if (!loaded.spec.train().corpus().dir().empty()) {
      candidates.push_back(CorpusVocabPath(loaded.spec));
    }
  }
  for (const std::string& path : candidates) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) continue;
    // Without --vocab the first candidate is the run's own copy.
    const bool run_copy = vocab_path.empty() && path == candidates.front();
    PT_RETURN_IF_ERROR(CheckVocabularyBytes(path, loaded.spec, run_copy));
    PT_ASSIGN_OR_RETURN(SentencePieceModel vocab, SentencePieceModel::Load(path));
    PT_CHECK_ARG(vocab.vocab_size() == loaded.spec.model().vocab_size(), "the vocabulary ", path,
                 " has ", vocab.vocab_size(), " pieces but the model of ", loaded.checkpoint_dir,
                 " was built for ", loaded.spec.model().vocab_size(), "; pass the right --vocab");
    loaded.vocab = std::make_unique<SentencePieceModel>(std::move(vocab));
    loaded.vocab_path = path;
    return loaded;
  }
  return absl::NotFoundError(absl::StrCat(
      "no vocabulary for ", loaded.checkpoint_dir, ": looked for ", absl::StrJoin(candidates, ", "),
      "; pass --vocab FILE (the spm.model it was trained with)"));
}

}  // namespace pipetrain
