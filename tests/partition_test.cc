// Partitions: every layer placed once over many model shapes, the balanced
// one checked against brute force, embeddings and head counted where they
// live, explicit ranges with errors that name the stage, and the cost model.
#include "parallel/partition.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

// Deterministic costs in [1, 9], integers unless `fractional`.
class CostSource {
 public:
  explicit CostSource(uint64_t seed) : state_(seed * 2654435761u + 1) {}
  double Next(bool fractional) {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    const double unit = static_cast<double>(state_ >> 11) / 9007199254740992.0;  // [0, 1)
    return fractional ? 1 + 8 * unit : static_cast<double>(1 + static_cast<int>(unit * 9));
  }

 private:
  uint64_t state_;
};

LayerCosts RandomCosts(int n, int m, uint64_t seed, bool fractional) {
  CostSource source(seed);
  LayerCosts costs;
  for (int i = 0; i < n; ++i) costs.encoder.push_back(source.Next(fractional));
  for (int i = 0; i < m; ++i) costs.decoder.push_back(source.Next(fractional));
  if (n > 0) costs.source_embedding = source.Next(fractional);
  if (m > 0) costs.target_embedding = source.Next(fractional);
  costs.head = 2 * source.Next(fractional);
  return costs;
}

// The cost each layer carries: its own plus the embeddings and head on it.
std::vector<double> Units(const LayerCosts& c) {
  std::vector<double> u(c.encoder);
  u.insert(u.end(), c.decoder.begin(), c.decoder.end());
  const int n = static_cast<int>(c.encoder.size());
  if (n > 0) u[0] += c.source_embedding;
  if (!c.decoder.empty()) u[n] += c.target_embedding;
  u.back() += c.head;
  return u;
}

void ExpectCoversEveryLayerOnce(const Partition& p, const LayerCosts& c, int stages) {
  const std::vector<double> units = Units(c);
  ASSERT_EQ(static_cast<int>(p.stages.size()), stages);
  EXPECT_EQ(p.encoder_layers, static_cast<int>(c.encoder.size()));
  EXPECT_EQ(p.decoder_layers, static_cast<int>(c.decoder.size()));
  std::vector<int> placed(units.size(), 0);
  for (int s = 0; s < stages; ++s) {
    const LayerRange& r = p.stages[s].layers;
    ASSERT_LT(r.first, r.last) << "stage " << s << " is empty";
    double cost = 0;
    for (int i = r.first; i < r.last; ++i) {
      ++placed[i];
      cost += units[i];
    }
    EXPECT_DOUBLE_EQ(p.stages[s].cost, cost) << "stage " << s;
    if (s > 0) EXPECT_EQ(r.first, p.stages[s - 1].layers.last) << "stage " << s;
  }
  for (size_t i = 0; i < placed.size(); ++i) EXPECT_EQ(placed[i], 1) << "layer " << i;
}

TEST(PartitionTest, EveryLayerPlacedExactlyOnceOverManyShapes) {
  int cases = 0;
  for (int n : {0, 1, 2, 3, 5, 8, 13}) {
    for (int m : {0, 1, 2, 4, 7, 12}) {
      if (n + m == 0) continue;
      for (int stages = 1; stages <= std::min(n + m, 16); ++stages) {
        SCOPED_TRACE(absl::StrCat("N=", n, " M=", m, " stages=", stages));
        const LayerCosts costs = RandomCosts(n, m, 100 * n + 10 * m + stages, true);
        absl::StatusOr<Partition> uniform = PartitionUniform(costs, stages);
        ASSERT_TRUE(uniform.ok()) << uniform.status();
        ExpectCoversEveryLayerOnce(*uniform, costs, stages);
        absl::StatusOr<Partition> balanced = PartitionCostBalanced(costs, stages);
        ASSERT_TRUE(balanced.ok()) << balanced.status();
        ExpectCoversEveryLayerOnce(*balanced, costs, stages);
        EXPECT_LE(balanced->max_stage_cost(), uniform->max_stage_cost());
        // The balanced ranges, given back explicitly, are accepted as they are.
        std::vector<LayerRange> ranges;
        for (const StagePartition& st : balanced->stages) ranges.push_back(st.layers);
        absl::StatusOr<Partition> expl = PartitionExplicit(costs, stages, ranges);
        ASSERT_TRUE(expl.ok()) << expl.status();
        ExpectCoversEveryLayerOnce(*expl, costs, stages);
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 300);
}

// All ways to cut `units` into `stages` non-empty ranges.
void ForEachSplit(int layers, int stages, const std::function<void(const std::vector<int>&)>& f) {
  std::vector<int> ends;
  std::function<void(int)> rec = [&](int start) {
    const int left = stages - static_cast<int>(ends.size());
    if (left == 1) {
      ends.push_back(layers);
      f(ends);
      ends.pop_back();
      return;
    }
    for (int end = start + 1; end <= layers - (left - 1); ++end) {
      ends.push_back(end);
      rec(end);
      ends.pop_back();
    }
  };
  rec(0);
}

// Integer costs make every sum exact, so the optimum can be compared with ==.
TEST(PartitionTest, CostBalancedMatchesBruteForce) {
  for (int n = 0; n <= 6; ++n) {
    for (int m = 0; m <= 5; ++m) {
      if (n + m == 0) continue;
      for (int stages = 1; stages <= std::min(n + m, 5); ++stages) {
        SCOPED_TRACE(absl::StrCat("N=", n, " M=", m, " stages=", stages));
        const LayerCosts costs = RandomCosts(n, m, 7 * n + 3 * m + stages, false);
        const std::vector<double> units = Units(costs);
        double best_max = std::numeric_limits<double>::infinity();
        double best_squares = best_max;
        ForEachSplit(static_cast<int>(units.size()), stages, [&](const std::vector<int>& ends) {
          double worst = 0, squares = 0;
          int first = 0;
          for (int end : ends) {
            double c = 0;
            for (int i = first; i < end; ++i) c += units[i];
            worst = std::max(worst, c);
            squares += c * c;
            first = end;
          }
          if (worst < best_max || (worst == best_max && squares < best_squares)) {
            best_max = worst;
            best_squares = squares;
          }
        });
        absl::StatusOr<Partition> p = PartitionCostBalanced(costs, stages);
        ASSERT_TRUE(p.ok()) << p.status();
        double squares = 0;
        for (const StagePartition& s : p->stages) squares += s.cost * s.cost;
        EXPECT_EQ(p->max_stage_cost(), best_max);
        EXPECT_EQ(squares, best_squares);
      }
    }
  }
}

// With equal layer costs and nothing else, the balanced split is the uniform one:
// the sizes differ by at most one and ties put the larger stages last.
TEST(PartitionTest, EqualCostsBalanceLikeUniform) {
  for (int layers = 1; layers <= 24; ++layers) {
    for (int stages = 1; stages <= layers; ++stages) {
      LayerCosts costs;
      costs.encoder.assign(layers / 2, 1.0);
      costs.decoder.assign(layers - layers / 2, 1.0);
      absl::StatusOr<Partition> u = PartitionUniform(costs, stages);
      absl::StatusOr<Partition> b = PartitionCostBalanced(costs, stages);
      ASSERT_TRUE(u.ok() && b.ok());
      for (int s = 0; s < stages; ++s) {
        EXPECT_EQ(b->stages[s].layers, u->stages[s].layers)
            << layers << " layers, " << stages << " stages, stage " << s;
      }
    }
  }
}

TEST(PartitionTest, UniformPutsTheExtraLayersLast) {
  LayerCosts costs;
  costs.encoder.assign(10, 1.0);
  absl::StatusOr<Partition> p = PartitionUniform(costs, 4);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->stages[0].layers, (LayerRange{0, 2}));
  EXPECT_EQ(p->stages[1].layers, (LayerRange{2, 4}));
  EXPECT_EQ(p->stages[2].layers, (LayerRange{4, 7}));
  EXPECT_EQ(p->stages[3].layers, (LayerRange{7, 10}));
}

// Source embedding 3 and head 3 on 8 unit layers: the balanced split gives
// the end stages one layer each.
TEST(PartitionTest, EmbeddingAndHeadCountWhereTheyLive) {
  LayerCosts costs;
  costs.encoder.assign(8, 1.0);
  costs.source_embedding = 3;
  costs.head = 3;
  absl::StatusOr<Partition> p = PartitionCostBalanced(costs, 4);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->stages[0].layers, (LayerRange{0, 1}));
  EXPECT_EQ(p->stages[1].layers, (LayerRange{1, 4}));
  EXPECT_EQ(p->stages[2].layers, (LayerRange{4, 7}));
  EXPECT_EQ(p->stages[3].layers, (LayerRange{7, 8}));
  EXPECT_EQ(p->max_stage_cost(), 4);
}

// 3 + 3 layers in 4 uniform stages: [0,1) [1,2) [2,4) [4,6); the third holds
// the last encoder layer and the first decoder layer (with the target embedding).
TEST(PartitionTest, AStageMayHoldTheEncoderDecoderBoundary) {
  LayerCosts costs;
  costs.encoder.assign(3, 1.0);
  costs.decoder.assign(3, 2.0);
  costs.source_embedding = 0.5;
  costs.target_embedding = 0.25;
  costs.head = 4;
  absl::StatusOr<Partition> p = PartitionUniform(costs, 4);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->HoldsBoundary(1));
  EXPECT_TRUE(p->HoldsBoundary(2));
  EXPECT_FALSE(p->HoldsBoundary(3));
  EXPECT_EQ(p->stages[2].cost, 1 + 2 + 0.25);
  EXPECT_EQ(FormatPartition(*p),
            "stage 0: layers [0, 1) encoder 0..0 +source embedding cost 1.5\n"
            "stage 1: layers [1, 2) encoder 1..1 cost 1\n"
            "stage 2: layers [2, 4) encoder 2..2 decoder 0..0 +target embedding cost 3.25\n"
            "stage 3: layers [4, 6) decoder 1..2 +head cost 8\n");
}

TEST(PartitionTest, DecoderOnlyModelEmbedsOnTheFirstStage) {
  LayerCosts costs;
  costs.decoder.assign(4, 1.0);
  costs.target_embedding = 2;
  absl::StatusOr<Partition> p = PartitionUniform(costs, 2);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->stages[0].cost, 4);
  EXPECT_THAT(FormatPartition(*p), HasSubstr("stage 0: layers [0, 2) decoder 0..1 +target"));
}

TEST(PartitionTest, ExplicitRangesErrorsNameTheStage) {
  LayerCosts costs;
  costs.encoder.assign(6, 1.0);
  costs.decoder.assign(6, 1.0);
  auto err = [&](std::vector<LayerRange> ranges, int stages = 3) {
    return Msg(PartitionExplicit(costs, stages, ranges).status());
  };
  EXPECT_THAT(err({{0, 4}, {4, 12}}), HasSubstr("2 layer ranges given for 3 stages"));
  EXPECT_THAT(err({{0, 4}, {4, 4}, {4, 12}}), HasSubstr("stage 1 [4, 4) is empty"));
  EXPECT_THAT(err({{0, 4}, {6, 8}, {8, 12}}),
              HasSubstr("stage 1 [6, 8) leaves layers 4..5 on no stage (stage 0 ends at layer 4)"));
  EXPECT_THAT(err({{0, 4}, {3, 8}, {8, 12}}),
              HasSubstr("stage 1 [3, 8) places layers 3..3 a second time"));
  EXPECT_THAT(
      err({{0, 4}, {4, 8}, {8, 13}}),
      HasSubstr("stage 2 [8, 13) is outside the model's 12 layers (6 encoder + 6 decoder)"));
  EXPECT_THAT(err({{1, 4}, {4, 8}, {8, 12}}), HasSubstr("the first stage must start at layer 0"));
  EXPECT_THAT(err({{0, 4}, {4, 8}, {8, 10}}),
              HasSubstr("the last stage (2) ends at layer 10, but the model has 12 layers"));
}

TEST(PartitionTest, RejectsBadCostsAndTooManyStages) {
  LayerCosts costs;
  costs.encoder = {1, 2, -3};
  EXPECT_THAT(Msg(PartitionUniform(costs, 1).status()), HasSubstr("encoder layer 2 = -3"));
  costs.encoder = {1, 2, 3};
  costs.decoder = {1, std::numeric_limits<double>::quiet_NaN()};
  EXPECT_THAT(Msg(PartitionCostBalanced(costs, 1).status()), HasSubstr("decoder layer 1"));
  costs.decoder = {1, 1};
  EXPECT_THAT(Msg(PartitionCostBalanced(costs, 6).status()), HasSubstr("6 stages for 5 layers"));
  EXPECT_THAT(Msg(PartitionUniform(costs, 0).status()), HasSubstr("stages = 0"));
  costs.decoder.clear();
  costs.target_embedding = 1;
  EXPECT_THAT(Msg(PartitionUniform(costs, 1).status()), HasSubstr("without decoder layers"));
  EXPECT_THAT(Msg(PartitionUniform(LayerCosts{}, 1).status()), HasSubstr("no layers"));
}

TEST(PartitionTest, ParsesLayerRanges) {
  absl::StatusOr<std::vector<LayerRange>> r = ParseLayerRanges("0:12, 12:24,24 : 40");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<LayerRange>{{0, 12}, {12, 24}, {24, 40}}));
  EXPECT_THAT(Msg(ParseLayerRanges("0:12,12-24").status()),
              HasSubstr("layer range 1 \"12-24\": expected first:last"));
  EXPECT_FALSE(ParseLayerRanges("").ok());
  EXPECT_FALSE(ParseLayerRanges("0:1:2").ok());
}

// d = 2, f = 4, V = 3, S = 2, T = 1, one layer each, training = 3 × forward:
//   encoder 8·S·d² + 4·S²·d + 4·S·d·f = 64 + 32 + 64 = 160
//   decoder 8·T·d² + 4·T²·d + 4·T·d·f = 32 + 8 + 32 = 72, cross-attention
//           4·T·d² + 4·S·d² + 4·T·S·d = 16 + 32 + 16 = 64
//   head 2·T·d·V = 12; embeddings S·d = 4 and T·d = 2.
TEST(PartitionTest, ModelledCostsByHand) {
  TransformerShape shape{1, 1, 2, 4, 3, 2, 1};
  absl::StatusOr<LayerCosts> c = ModelledLayerCosts(shape);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->encoder, std::vector<double>{3 * 160});
  EXPECT_EQ(c->decoder, std::vector<double>{3 * 136});
  EXPECT_EQ(c->head, 3 * 12);
  EXPECT_EQ(c->source_embedding, 3 * 4);
  EXPECT_EQ(c->target_embedding, 3 * 2);
  // Decoder-only: no cross-attention, no source embedding.
  shape.encoder_layers = 0;
  c = ModelledLayerCosts(shape);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->decoder, std::vector<double>{3 * 72});
  EXPECT_EQ(c->source_embedding, 0);
  EXPECT_TRUE(PartitionCostBalanced(*c, 1).ok());
  shape.d_model = 0;
  EXPECT_THAT(Msg(ModelledLayerCosts(shape).status()), HasSubstr("d_model = 0"));
  shape = {2, 0, 8, 8, 8, 0, 0};
  EXPECT_THAT(Msg(ModelledLayerCosts(shape).status()), HasSubstr("source_length = 0"));
}

}  // namespace
}  // namespace pipetrain
