// Translation with a trained model: greedy or beam search (models/beam_search.h)
// over an inference copy of the model.
//
// Encoder-decoder: the encoder runs once per batch of sentences; the decoder
// then advances one target position per step for all hypotheses of all
// sentences together, caching each layer's self-attention keys and values of
// the earlier positions and the cross-attention keys and values of the
// encoder output, so a step costs one position, not the whole prefix.
// Decoder-only: the source is run through the decoder once (filling the
// cache), then <s> and the target follow as above, the layout training uses
// (source, <s>, target). Encoder-only models do not generate.
//
// The cached decoder layer mirrors TransformerLayer's forward (same
// parameter names, same ops) for one new position; Create checks that it
// registers exactly the parameters the model's decoder layers do, and the
// tests check its scores against the teacher-forced model.
#ifndef PIPETRAIN_MODELS_TRANSLATOR_H_
#define PIPETRAIN_MODELS_TRANSLATOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "models/beam_search.h"
#include "models/model_stage.h"
#include "models/parameter_store.h"
#include "proto/model_spec.pb.h"

namespace pipetrain {

class CachedDecoder;

class Translator {
 public:
  // Builds an inference model of `spec` (validated, defaults applied) in the
  // dtype of `trained`, copying every parameter by name from `trained` (the
  // whole model's store). A parameter missing from `trained` or shaped
  // differently there is an InvalidArgument error naming it.
  static absl::StatusOr<std::unique_ptr<Translator>> Create(const ModelSpec& spec,
                                                            const ParameterStore& trained);
  ~Translator();

  // Copies new values of the same parameters (e.g. a few hundred training
  // steps later), by name, as Create does; much cheaper than a new Translator.
  absl::Status SetParameters(const ParameterStore& trained);

  // Translates each source (content ids, the target-language tag first; no
  // <s> or </s>) and returns its best hypothesis. Sentences are decoded
  // options.batch_sentences at a time, grouped by source length; the result
  // of a sentence does not depend on the others.
  absl::StatusOr<std::vector<Hypothesis>> Translate(
      const std::vector<std::vector<int32_t>>& sources, const DecodeOptions& options) const;

  // The most content tokens a hypothesis of a `source_tokens`-token source
  // may have: a·n + b, capped by what model.max_positions leaves room for.
  // An error when a source leaves no room at all.
  absl::StatusOr<int> MaxTargetTokens(int source_tokens, const DecodeOptions& options) const;

  const ModelSpec& spec() const { return spec_; }

 private:
  Translator(const ModelSpec& spec, DType dtype);
  absl::StatusOr<std::vector<Hypothesis>> TranslateChunk(
      const std::vector<const std::vector<int32_t>*>& sources, const DecodeOptions& options) const;

  ModelSpec spec_;
  DType dtype_;
  int64_t max_positions_ = 1024;
  std::unique_ptr<ModelStage> encoder_;     // layers [0, N); encoder-decoder only
  std::unique_ptr<CachedDecoder> decoder_;  // layers [N, N+M) and the head, incremental
};

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_TRANSLATOR_H_
