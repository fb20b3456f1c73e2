#include "models/checkpoint_spec.h"

#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "models/checkpoint_layout.h"
#include "models/model_stage.h"

namespace pipetrain {
namespace {

using checkpoint_layout::CheckedMul;

// Every parameter (name -> shape) of `model`, built one layer group at a
// time so at most one layer (and the embedding) is allocated at once.
absl::StatusOr<std::map<std::string, Shape>> ExpectedParameters(const ModelSpec& model) {
  std::map<std::string, Shape> expected;
  const int total = model.encoder_layers() + model.decoder_layers();
  for (int g = 0; g < total; ++g) {
    auto stage = ModelStage::Create(model, DType::kF32, /*seed=*/0, g, g + 1);
    if (!stage.ok()) return stage.status();
    for (const ParameterInfo& info : (*stage)->params().infos()) expected[info.name] = info.shape;
  }
  return expected;
}

}  // namespace

std::vector<std::string> CheckpointSpecProblems(const CheckpointReader& reader,
                                                const ModelSpec& model, const std::string& source) {
  std::vector<std::string> problems;
  // Bounds before building anything: every layer has its own data file, and
  // the largest single tensors (embedding, an FFN matrix, an attention
  // matrix) must fit in the checkpoint's bytes, or the spec cannot be the
  // one it was written from.
  int64_t file_bytes = 0;
  for (const CheckpointFile& f : reader.manifest().files()) {
    if (!checkpoint_layout::CheckedAdd(file_bytes, f.size(), &file_bytes)) break;
  }
  const int64_t layers = int64_t{model.encoder_layers()} + model.decoder_layers();
  if (model.encoder_layers() < 0 || model.decoder_layers() < 0 ||
      layers > reader.manifest().files_size()) {
    problems.push_back(absl::StrCat(source, " has ", model.encoder_layers(), "+",
                                    model.decoder_layers(), " layers, but the checkpoint has only ",
                                    reader.manifest().files_size(),
                                    " data files (one per layer at least)"));
    return problems;
  }
  int64_t embedding = 0, ffn = 0, attention = 0;
  const int64_t d = model.d_model();
  if (!CheckedMul(model.vocab_size(), d, &embedding) || !CheckedMul(embedding, 4, &embedding) ||
      !CheckedMul(model.ffn_dim(), d, &ffn) || !CheckedMul(ffn, 4, &ffn) ||
      !CheckedMul(d, d, &attention) || !CheckedMul(attention, 4, &attention) ||
      embedding > file_bytes || ffn > file_bytes || attention > file_bytes) {
    problems.push_back(absl::StrCat(
        source, ": vocab_size ", model.vocab_size(), ", d_model ", d, ", ffn_dim ", model.ffn_dim(),
        " need tensors larger than the checkpoint's ", file_bytes, " bytes of data"));
    return problems;
  }
  if (absl::Status valid = ValidateModelSpec(model, source); !valid.ok()) {
    problems.push_back(std::string(valid.message()));
    return problems;
  }
  auto expected = ExpectedParameters(model);
  if (!expected.ok()) {
    problems.push_back(
        absl::StrCat(source, ": cannot build its model: ", expected.status().message()));
    return problems;
  }
  std::vector<TensorRole> roles = {PARAM};
  if (reader.has_optimizer_state()) roles = {PARAM, ADAM_M, ADAM_V};
  for (const auto& [name, shape] : *expected) {
    for (const TensorRole role : roles) {
      const CheckpointTensor* entry = reader.Find(name, role);
      if (entry == nullptr) {
        problems.push_back(absl::StrCat("missing ", name, " (", TensorRoleLabel(role), "), which ",
                                        source, " needs"));
      } else if (Shape(entry->shape().begin(), entry->shape().end()) != shape) {
        problems.push_back(absl::StrCat(name, " (", TensorRoleLabel(role), "): shape ",
                                        checkpoint_layout::ShapeOf(*entry), " in the checkpoint, ",
                                        ShapeString(shape), " in ", source));
      }
    }
  }
  for (const CheckpointTensor& t : reader.manifest().tensors()) {
    if (!expected->count(t.name())) {
      problems.push_back(
          absl::StrCat(checkpoint_layout::Describe(t), " is not a parameter of ", source));
    }
  }
  return problems;
}

}  // namespace pipetrain
