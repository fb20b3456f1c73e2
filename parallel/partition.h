// Partition: which contiguous layers each pipeline stage holds.
//
// Layers are numbered as in ModelStage: encoder layers 0..N−1, then decoder
// layers N..N+M−1; a stage holds the half-open range [first, last), at least
// one layer, and the stages in order cover every layer exactly once. A stage
// may hold the encoder/decoder boundary. The parts that are not layers go
// with the layer that needs them, and their cost is counted there:
//   source embedding -> layer 0 (when N > 0),
//   target embedding -> layer N, the first decoder layer (when M > 0),
//   output head      -> the last layer.
// With interleaving, partition into p·v stages: stage s is virtual stage s,
// chunk s / p of rank s % p (schedule.h).
#ifndef PIPETRAIN_PARALLEL_PARTITION_H_
#define PIPETRAIN_PARALLEL_PARTITION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pipetrain {

// Cost of each part of the model in any one unit (seconds measured, FLOPs
// modelled); only ratios matter.
struct LayerCosts {
  std::vector<double> encoder;    // N entries
  std::vector<double> decoder;    // M entries
  double source_embedding = 0.0;  // must be 0 without an encoder
  double target_embedding = 0.0;  // must be 0 without a decoder
  double head = 0.0;
};

struct LayerRange {
  int first = 0;  // first layer held
  int last = 0;   // one past the last layer held

  friend bool operator==(const LayerRange&, const LayerRange&) = default;
};

struct StagePartition {
  LayerRange layers;
  double cost = 0.0;  // its layers plus the embeddings and head it holds
};

struct Partition {
  int encoder_layers = 0;
  int decoder_layers = 0;
  std::vector<StagePartition> stages;

  int layers() const { return encoder_layers + decoder_layers; }
  double max_stage_cost() const;
  // Holds both encoder and decoder layers.
  bool HoldsBoundary(int stage) const;
};

// Equal layer counts: every stage holds ⌊L/k⌋ layers and the last L mod k
// stages one more, since under 1F1B the early stages already keep the most
// micro-batches of activations (min(p − r, m) on rank r). Needs L >= k.
absl::StatusOr<Partition> PartitionUniform(const LayerCosts& costs, int stages);

// Contiguous ranges minimising the largest stage cost (exactly, over all
// partitions into `stages` non-empty ranges); among those, the one with the
// smallest sum of squared stage costs (the most even); remaining ties go to
// the earlier boundary, so the result is deterministic. Needs L >= k.
absl::StatusOr<Partition> PartitionCostBalanced(const LayerCosts& costs, int stages);

// The ranges as given, one per stage; errors name the stage and the layers
// that are missing, doubled or out of range.
absl::StatusOr<Partition> PartitionExplicit(const LayerCosts& costs, int stages,
                                            const std::vector<LayerRange>& ranges);

// "0:12,12:24,24:40" -> {[0,12), [12,24), [24,40)} (spaces allowed). Only the
// syntax is checked here; PartitionExplicit checks the cover.
absl::StatusOr<std::vector<LayerRange>> ParseLayerRanges(absl::string_view text);

// One line per stage: "stage 0: layers [0, 12) enc 0-11 +src_embed cost 13.5".
std::string FormatPartition(const Partition& partition);

// The shape a cost model needs; plain numbers, so that parallel/ stays free of
// the model code.
struct TransformerShape {
  int encoder_layers = 0;
  int decoder_layers = 0;
  int64_t d_model = 0;
  int64_t ffn_dim = 0;
  int64_t vocab = 0;
  int64_t source_length = 0;  // tokens per sequence on each side
  int64_t target_length = 0;
};

// Training FLOPs per sequence (forward + backward ≈ 3 × forward matmul FLOPs)
// of every part: attention projections, scores and context, cross-attention,
// the FFN, the output projection; embeddings as one elementwise pass. A model
// for planning, to be replaced by measured costs where they exist.
absl::StatusOr<LayerCosts> ModelledLayerCosts(const TransformerShape& shape);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_PARTITION_H_
