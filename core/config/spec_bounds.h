// The largest value every size-like field of a RunSpec may take. Validation
// (spec_validate.cc, models/spec_checks.cc, parallel/placement_checks.cc)
// rejects a spec above any of them before anything is allocated, so code
// that sizes buffers from the spec can multiply two or three fields in int64
// without overflow, and a hostile spec ends in a message naming the field
// rather than in a crash or an allocator abort. docs/spec-reference.md
// ("Bounds") lists them; keep the two in step.
//
// The bounds are far above any model this trainer targets (the flagship
// DeepNet 1000L has 500 + 500 layers, d = 512) and far below int32/int64
// overflow: vocab × d_model < 2^40 and layers × d_model × ffn_dim < 2^51
// elements, so byte counts of every buffer stay below 2^63. Whether a model
// inside the bounds fits in memory is a separate check
// (launcher/model_memory.h).
#ifndef PIPETRAIN_CORE_CONFIG_SPEC_BOUNDS_H_
#define PIPETRAIN_CORE_CONFIG_SPEC_BOUNDS_H_

#include <cstdint>

namespace pipetrain::spec_bounds {

// --- ModelSpec ---
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 24;       // 16,777,216 ids
inline constexpr int64_t kMaxDModel = int64_t{1} << 16;          // 65,536
inline constexpr int64_t kMaxFfnDim = int64_t{1} << 18;          // 262,144
inline constexpr int64_t kMaxLayersPerStack = int64_t{1} << 16;  // 65,536 per stack
inline constexpr int64_t kMaxPositions = int64_t{1} << 20;       // 1,048,576 tokens
inline constexpr int64_t kMaxNormOverrides = 1024;
// α and β scale activations and initial weights; the depth-derived values
// stay below 30 for every allowed depth.
inline constexpr double kMaxNormConstant = 1000;
inline constexpr double kMaxLayerNormEps = 1;

// --- TrainConfig ---
// Steps (train.steps, model.branch_norm.max_norm_step): far beyond any run,
// and exact in a double, which the learning-rate and BranchNorm schedules use.
inline constexpr int64_t kMaxSteps = int64_t{1000000000000};     // 1e12
inline constexpr int64_t kMaxTokensPerBatch = int64_t{1} << 26;  // 67,108,864
inline constexpr int64_t kMaxMicrobatches = int64_t{1} << 16;
// microbatches × data_parallel: micro-batches of one optimizer step.
inline constexpr int64_t kMaxStepMicrobatches = int64_t{1} << 24;
inline constexpr int64_t kMaxKeepCheckpoints = int64_t{1} << 20;
// p(direction) ∝ pairs^(1/T) must stay finite in a double for any pair
// count below 2^40: ln(2^40) / 0.05 ≈ 555 < ln(DBL_MAX) ≈ 709.
inline constexpr double kMinCorpusTemperature = 0.05;
inline constexpr int64_t kMaxVocabSentences = 10000000;
inline constexpr int64_t kMaxValidationSentences = int64_t{1} << 20;
inline constexpr int64_t kMaxBeamSize = 256;
inline constexpr double kMaxLengthPenalty = 100;
inline constexpr int64_t kMaxSamplePerGroup = int64_t{1} << 16;

// --- Placement (PipelineConfig, data_parallel) ---
inline constexpr int64_t kMaxStages = int64_t{1} << 16;
inline constexpr int64_t kMaxChunks = int64_t{1} << 10;
inline constexpr int64_t kMaxDataParallel = int64_t{1} << 16;
inline constexpr int64_t kMaxWorldSize = int64_t{1} << 20;  // stages × data_parallel ranks
// stages × chunks × microbatches: every rank builds the whole schedule, a
// few 16-byte actions per (virtual stage, micro-batch), so this caps it
// near half a GiB.
inline constexpr int64_t kMaxScheduleSlots = int64_t{1} << 22;

}  // namespace pipetrain::spec_bounds

#endif  // PIPETRAIN_CORE_CONFIG_SPEC_BOUNDS_H_
