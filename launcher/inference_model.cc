#include "launcher/inference_model.h"

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/spec_loader.h"
#include "core/status_macros.h"
#include "launcher/model_memory.h"
#include "launcher/run_spec_checks.h"
#include "launcher/trainer/corpus_preparation.h"
#include "models/checkpoint.h"

namespace pipetrain {

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
