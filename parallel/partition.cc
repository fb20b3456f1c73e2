#include "parallel/partition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

absl::Status CheckCost(double value, const std::string& what) {
  PT_CHECK_ARG(std::isfinite(value) && value >= 0, "partition: cost of ", what, " = ", value,
               ", expected a finite value >= 0");
  return absl::OkStatus();
}

// The cost of each layer with the embeddings and head it carries.
absl::StatusOr<std::vector<double>> UnitCosts(const LayerCosts& costs) {
  const int n = static_cast<int>(costs.encoder.size());
  const int m = static_cast<int>(costs.decoder.size());
  PT_CHECK_ARG(n + m >= 1, "partition: the model has no layers (0 encoder and 0 decoder costs)");
  PT_CHECK_ARG(n > 0 || costs.source_embedding == 0, "partition: source_embedding cost ",
               costs.source_embedding, " given for a model without encoder layers");
  PT_CHECK_ARG(m > 0 || costs.target_embedding == 0, "partition: target_embedding cost ",
               costs.target_embedding, " given for a model without decoder layers");
  std::vector<double> units;
  for (int i = 0; i < n; ++i) {
    PT_RETURN_IF_ERROR(CheckCost(costs.encoder[i], absl::StrCat("encoder layer ", i)));
    units.push_back(costs.encoder[i]);
  }
  for (int i = 0; i < m; ++i) {
    PT_RETURN_IF_ERROR(CheckCost(costs.decoder[i], absl::StrCat("decoder layer ", i)));
    units.push_back(costs.decoder[i]);
  }
  PT_RETURN_IF_ERROR(CheckCost(costs.source_embedding, "the source embedding"));
  PT_RETURN_IF_ERROR(CheckCost(costs.target_embedding, "the target embedding"));
  PT_RETURN_IF_ERROR(CheckCost(costs.head, "the head"));
  if (n > 0) units[0] += costs.source_embedding;
  if (m > 0) units[n] += costs.target_embedding;
  units.back() += costs.head;
  return units;
}

absl::Status CheckStages(int stages, int layers, const char* how) {
  PT_CHECK_ARG(stages >= 1, how, " partition: stages = ", stages, ", expected >= 1");
  PT_CHECK_ARG(stages <= layers, how, " partition: ", stages, " stages for ", layers,
               " layers; every stage needs at least one layer (use at most ", layers,
               " stages, or fewer chunks per rank)");
  return absl::OkStatus();
}

// `ends[i]` is one past the last layer of stage i.
Partition MakePartition(const LayerCosts& costs, const std::vector<double>& units,
                        const std::vector<int>& ends) {
  Partition partition;
  partition.encoder_layers = static_cast<int>(costs.encoder.size());
  partition.decoder_layers = static_cast<int>(costs.decoder.size());
  int first = 0;
  for (int end : ends) {
    StagePartition stage;
    stage.layers = {first, end};
    for (int i = first; i < end; ++i) stage.cost += units[i];
    partition.stages.push_back(stage);
    first = end;
  }
  return partition;
}

}  // namespace

double Partition::max_stage_cost() const {
  double worst = 0;
  for (const StagePartition& stage : stages) worst = std::max(worst, stage.cost);
  return worst;
}

bool Partition::HoldsBoundary(int stage) const {
  const LayerRange& r = stages[stage].layers;
  return r.first < encoder_layers && r.last > encoder_layers;
}

absl::StatusOr<Partition> PartitionUniform(const LayerCosts& costs, int stages) {
  PT_ASSIGN_OR_RETURN(std::vector<double> units, UnitCosts(costs));
  const int layers = static_cast<int>(units.size());
  PT_RETURN_IF_ERROR(CheckStages(stages, layers, "uniform"));
  const int base = layers / stages, extra = layers % stages;
  std::vector<int> ends;
  int end = 0;
  for (int s = 0; s < stages; ++s) {
    end += base + (s >= stages - extra ? 1 : 0);
    ends.push_back(end);
  }
  return MakePartition(costs, units, ends);
}

absl::StatusOr<Partition> PartitionCostBalanced(const LayerCosts& costs, int stages) {
  PT_ASSIGN_OR_RETURN(std::vector<double> units, UnitCosts(costs));
  const int layers = static_cast<int>(units.size());
  PT_RETURN_IF_ERROR(CheckStages(stages, layers, "cost-balanced"));
  // Prefix sums of non-negative costs are non-decreasing even in floating
  // point, so a range's cost P[i] − P[t] only grows as t moves left; both
  // searches stop there. Every comparison uses the same P[i] − P[t]
  // expression, so the bound found first is met exactly by the second pass.
  std::vector<double> prefix(layers + 1, 0.0);
  for (int i = 0; i < layers; ++i) prefix[i + 1] = prefix[i] + units[i];
  auto range_cost = [&](int t, int i) { return prefix[i] - prefix[t]; };

  // Pass 1: the smallest achievable largest stage cost. worst[i] = best
  // bottleneck of the first i layers in j stages.
  std::vector<double> worst(layers + 1, kInf), next(layers + 1, kInf);
  for (int i = 1; i <= layers; ++i) worst[i] = range_cost(0, i);
  for (int j = 2; j <= stages; ++j) {
    std::fill(next.begin(), next.end(), kInf);
    for (int i = j; i <= layers; ++i) {
      for (int t = i - 1; t >= j - 1; --t) {
        const double last = range_cost(t, i);
        if (last >= next[i]) break;
        next[i] = std::min(next[i], std::max(worst[t], last));
      }
    }
    std::swap(worst, next);
  }
  const double bound = worst[layers];

  // Pass 2: under that bound, the smallest sum of squared stage costs.
  // from[j][i]: where stage j's range starts in the best split of i layers.
  std::vector<double> squares(layers + 1, kInf), next_squares(layers + 1, kInf);
  std::vector<std::vector<int>> from(stages + 1, std::vector<int>(layers + 1, -1));
  for (int i = 1; i <= layers; ++i) {
    const double c = range_cost(0, i);
    if (c <= bound) {
      squares[i] = c * c;
      from[1][i] = 0;
    }
  }
  for (int j = 2; j <= stages; ++j) {
    std::fill(next_squares.begin(), next_squares.end(), kInf);
    for (int i = j; i <= layers; ++i) {
      for (int t = i - 1; t >= j - 1; --t) {
        const double last = range_cost(t, i);
        if (last > bound) break;
        if (squares[t] == kInf) continue;
        const double total = squares[t] + last * last;
        // `<=` while t falls: ties go to the earlier boundary.
        if (total <= next_squares[i]) {
          next_squares[i] = total;
          from[j][i] = t;
        }
      }
    }
    std::swap(squares, next_squares);
  }
  std::vector<int> ends(stages);
  for (int j = stages, i = layers; j >= 1; --j) {
    ends[j - 1] = i;
    i = from[j][i];
  }
  return MakePartition(costs, units, ends);
}

absl::StatusOr<Partition> PartitionExplicit(const LayerCosts& costs, int stages,
                                            const std::vector<LayerRange>& ranges) {
  PT_ASSIGN_OR_RETURN(std::vector<double> units, UnitCosts(costs));
  const int layers = static_cast<int>(units.size());
  const std::string model = absl::StrCat(layers, " layers (", costs.encoder.size(), " encoder + ",
                                         costs.decoder.size(), " decoder)");
  PT_CHECK_ARG(static_cast<int>(ranges.size()) == stages, "explicit partition: ", ranges.size(),
               " layer ranges given for ", stages, " stages; expected one range per stage");
  std::vector<int> ends;
  int expected = 0;
  for (int s = 0; s < stages; ++s) {
    const LayerRange& r = ranges[s];
    const std::string which =
        absl::StrCat("explicit partition: stage ", s, " [", r.first, ", ", r.last, ")");
    PT_CHECK_ARG(r.first < r.last, which, " is empty; every stage needs at least one layer");
    PT_CHECK_ARG(r.first >= 0 && r.last <= layers, which, " is outside the model's ", model);
    PT_CHECK_ARG(r.first <= expected, which, " leaves layers ", expected, "..", r.first - 1,
                 " on no stage (",
                 s == 0 ? std::string("the first stage must start at layer 0")
                        : absl::StrCat("stage ", s - 1, " ends at layer ", expected),
                 ")");
    PT_CHECK_ARG(r.first >= expected, which, " places layers ", r.first, "..", expected - 1,
                 " a second time (stage ", s - 1, " ends at layer ", expected, ")");
    expected = r.last;
    ends.push_back(r.last);
  }
  PT_CHECK_ARG(expected == layers, "explicit partition: the last stage (", stages - 1,
               ") ends at layer ", expected, ", but the model has ", model, ": layers ", expected,
               "..", layers - 1, " are on no stage");
  return MakePartition(costs, units, ends);
}

absl::StatusOr<std::vector<LayerRange>> ParseLayerRanges(absl::string_view text) {
  std::vector<LayerRange> ranges;
  int index = 0;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    std::vector<absl::string_view> ends = absl::StrSplit(part, ':');
    LayerRange r;
    if (ends.size() != 2 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(ends[0]), &r.first) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(ends[1]), &r.last)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer range ", index, " \"", part,
                       "\": expected first:last (half-open layer numbers, e.g. \"0:12,12:24\")"));
    }
    ranges.push_back(r);
    ++index;
  }
  return ranges;
}

std::string FormatPartition(const Partition& partition) {
  const int n = partition.encoder_layers, m = partition.decoder_layers;
  std::string out;
  for (size_t s = 0; s < partition.stages.size(); ++s) {
    const LayerRange& r = partition.stages[s].layers;
    absl::StrAppend(&out, "stage ", s, ": layers [", r.first, ", ", r.last, ")");
    if (r.first < n) absl::StrAppend(&out, " encoder ", r.first, "..", std::min(r.last, n) - 1);
    if (r.last > n) {
      absl::StrAppend(&out, " decoder ", std::max(r.first, n) - n, "..", r.last - 1 - n);
    }
    if (n > 0 && r.first == 0) out += " +source embedding";
    if (m > 0 && r.first <= n && n < r.last) out += " +target embedding";
    if (r.last == n + m) out += " +head";
    absl::StrAppend(&out, absl::StrFormat(" cost %.6g\n", partition.stages[s].cost));
  }
  return out;
}

absl::StatusOr<LayerCosts> ModelledLayerCosts(const TransformerShape& shape) {
  const int n = shape.encoder_layers, m = shape.decoder_layers;
  PT_CHECK_ARG(n >= 0 && m >= 0 && n + m >= 1, "cost model: encoder_layers = ", n,
               ", decoder_layers = ", m, "; expected >= 0 each and at least one layer");
  PT_CHECK_ARG(shape.d_model >= 1 && shape.ffn_dim >= 1 && shape.vocab >= 1,
               "cost model: d_model = ", shape.d_model, ", ffn_dim = ", shape.ffn_dim,
               ", vocab = ", shape.vocab, "; expected >= 1 each");
  PT_CHECK_ARG(n == 0 || shape.source_length >= 1,
               "cost model: source_length = ", shape.source_length,
               ", expected >= 1 with an encoder");
  PT_CHECK_ARG(m == 0 || shape.target_length >= 1,
               "cost model: target_length = ", shape.target_length,
               ", expected >= 1 with a decoder");
  const double d = static_cast<double>(shape.d_model), f = static_cast<double>(shape.ffn_dim);
  const double s = static_cast<double>(shape.source_length);
  const double t = static_cast<double>(shape.target_length);
  constexpr double kTrain = 3.0;  // backward ≈ twice the forward
  // Per layer, forward: Q, K, V, O projections 8·len·d², attention scores and
  // context 4·len²·d, FFN 4·len·d·f (a multiply-add is 2 FLOPs).
  const double encoder = 8 * s * d * d + 4 * s * s * d + 4 * s * d * f;
  double decoder = 8 * t * d * d + 4 * t * t * d + 4 * t * d * f;
  // Cross-attention: Q and O on the target, K and V on the encoder output.
  if (n > 0) decoder += 4 * t * d * d + 4 * s * d * d + 4 * t * s * d;
  LayerCosts costs;
  costs.encoder.assign(n, kTrain * encoder);
  costs.decoder.assign(m, kTrain * decoder);
  if (n > 0) costs.source_embedding = kTrain * s * d;
  if (m > 0) costs.target_embedding = kTrain * t * d;
  costs.head = kTrain * 2 * (m > 0 ? t : s) * d * static_cast<double>(shape.vocab);
  return costs;
}

}  // namespace pipetrain
