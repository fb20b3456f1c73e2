// `pipetrain plan`: its parameter and activation counts against what the real
// model allocates and keeps, its bubble against the closed form, its output
// for the shipped configs, its errors, and the Chrome trace it writes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "core/config/spec_loader.h"
#include "gtest/gtest.h"
#include "launcher/plan_memory.h"
#include "models/model_stage.h"
#include "models/transformer_model.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

using testing::RunCommand;
using testing::RunPipetrain;

// --- Counts against the real model ------------------------------------------

struct ModelCase {
  ModelKind kind;
  ResidualNorm norm;
  bool tied = true;
};

std::string Name(const ModelCase& c) {
  return absl::StrCat(ModelKind_Name(c.kind), "_", ResidualNorm_Name(c.norm),
                      c.tied ? "" : "_untied");
}

// Small and with every size different, so that a term counted with the wrong
// dimension cannot come out right by accident.
ModelSpec SmallSpec(const ModelCase& c) {
  ModelSpec spec;
  spec.set_kind(c.kind);
  spec.set_vocab_size(13);
  spec.set_d_model(8);
  spec.set_ffn_dim(24);
  spec.set_heads(2);
  spec.set_encoder_layers(c.kind == DECODER_ONLY ? 0 : 3);
  spec.set_decoder_layers(c.kind == ENCODER_ONLY ? 0 : 3);
  spec.set_activation(GELU);
  spec.set_attention_dropout(0.1f);
  spec.set_activation_dropout(0.1f);
  spec.set_residual_dropout(0.1f);
  spec.set_label_smoothing(0.1f);
  spec.set_max_positions(64);
  spec.set_norm(c.norm);
  spec.set_layer_norm_eps(1e-5f);
  spec.set_tied_embeddings(c.tied);
  if (c.norm == BRANCHNORM) {
    // The shape that keeps the most (the branch and its statistics) until T.
    spec.mutable_branch_norm()->set_shape(NORMALIZED_POWER);
    spec.mutable_branch_norm()->set_max_norm_step(100);
  }
  return spec;
}

std::vector<ModelCase> AllCases() {
  std::vector<ModelCase> cases;
  for (ResidualNorm norm : {POST_LN, PRE_LN, DEEPNORM, BRANCHNORM, NORMFORMER, SUBLN}) {
    cases.push_back({ENCODER_DECODER, norm});
  }
  cases.push_back({ENCODER_DECODER, PRE_LN, /*tied=*/false});
  cases.push_back({DECODER_ONLY, FOUNDATION_LN});
  cases.push_back({DECODER_ONLY, NORMFORMER, /*tied=*/false});
  cases.push_back({ENCODER_ONLY, UPSCALE_LN});
  cases.push_back({ENCODER_ONLY, SUBLN});
  return cases;
}

class PlanCountTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(PlanCountTest, StageParametersEqualWhatModelStageAllocates) {
  const ModelSpec spec = SmallSpec(GetParam());
  const int total = spec.encoder_layers() + spec.decoder_layers();
  for (int first = 0; first < total; ++first) {
    for (int last = first + 1; last <= total; ++last) {
      auto stage = ModelStage::Create(spec, DType::kF32, 1, first, last);
      ASSERT_TRUE(stage.ok()) << stage.status();
      auto count = CountStageParameters(spec, first, last);
      ASSERT_TRUE(count.ok()) << count.status();
      EXPECT_EQ(count->total, (*stage)->params().total_elements()) << first << ".." << last;
      EXPECT_EQ(count->embedding > 0, (*stage)->has_embedding()) << first << ".." << last;
      int uses = 0;
      for (EmbeddingUse use : {kOutputUse, kTargetUse, kSourceUse}) {
        uses += (*stage)->embedding_partial(use).defined() ? 1 : 0;
      }
      EXPECT_EQ(count->embedding_uses, uses) << first << ".." << last;
    }
  }
}

// Bytes of distinct storage reachable from a stage's saved state.
class ByteCounter {
 public:
  void Add(const Tensor& t) {
    if (!t.defined()) return;
    size_t& bytes = seen_[t.storage().get()];
    bytes = std::max(bytes, t.nbytes());
  }
  void Add(const ops::LayerNormSaved& s) {
    Add(s.mean);
    Add(s.rstd);
  }
  void Add(const JoinSaved& s) {
    for (const Tensor* t : {&s.x, &s.f, &s.s, &s.d_post_ln_out, &s.d_pre_ln_out}) Add(*t);
    Add(s.pre_ln);
    Add(s.post_ln);
    Add(s.power.mean);
    Add(s.power.sigma);
  }
  void Add(const AttentionSaved& s) {
    // options.key_lengths is the batch's own length vector, not an activation.
    for (const Tensor* t : {&s.h, &s.memory, &s.q, &s.k, &s.v, &s.attention.probs, &s.context,
                            &s.scaled, &s.o_in, &s.o_out, &s.dq, &s.dk, &s.dv, &s.d_o_out,
                            &s.d_post_ln_out, &s.d_sub_ln_out, &s.d_scaled}) {
      Add(*t);
    }
    Add(s.sub_ln);
    Add(s.post_ln);
  }
  void Add(const FfnSaved& s) {
    for (const Tensor* t :
         {&s.h, &s.pre_act, &s.act, &s.fc2_in, &s.d_fc2_out, &s.d_inner_ln_out, &s.d_pre_act}) {
      Add(*t);
    }
    Add(s.inner_ln);
  }
  void Add(const StageSaved& s) {
    for (const LayerSaved& l : s.layers) {
      Add(l.self_join);
      Add(l.self_attn);
      Add(l.cross_join);
      Add(l.cross_attn);
      Add(l.ffn_join);
      Add(l.ffn);
    }
    for (const Tensor& t : s.layer_inputs) Add(t);
    for (const Tensor* t : {&s.memory, &s.encoder_top, &s.decoder_top, &s.hidden, &s.logits,
                            &s.labels, &s.loss.logsumexp, &s.d_logits, &s.d_decoder_top,
                            &s.d_encoder_top, &s.d_src_embedded, &s.d_tgt_embedded}) {
      Add(*t);
    }
    Add(s.encoder_final_ln);
    Add(s.decoder_final_ln);
  }
  int64_t total() const {
    int64_t sum = 0;
    for (const auto& [storage, bytes] : seen_) sum += static_cast<int64_t>(bytes);
    return sum;
  }

 private:
  std::map<const Storage*, size_t> seen_;
};

constexpr int kSequences = 3, kSourceLength = 5, kTargetLength = 7;

// Every sequence full length, so nothing is padding.
Batch FullBatch(const ModelSpec& spec) {
  const int src = kSourceLength;
  // Encoder-only labels align with the source.
  const int tgt = spec.kind() == ENCODER_ONLY ? kSourceLength : kTargetLength;
  auto ids = [&](int length, int offset) {
    std::vector<int32_t> v(kSequences * length);
    for (size_t i = 0; i < v.size(); ++i) v[i] = kFirstContentId + (i + offset) % 9;
    return Tensor::FromInts(v, {kSequences, length});
  };
  Batch b;
  b.src_ids = ids(src, 0);
  b.src_lengths = Tensor::FromInts(std::vector<int32_t>(kSequences, src), {kSequences});
  b.tgt_in = ids(tgt, 1);
  b.tgt_lengths = Tensor::FromInts(std::vector<int32_t>(kSequences, tgt), {kSequences});
  b.labels = ids(tgt, 2);
  return b;
}

void Fill(StageBoundary* boundary) {
  for (Tensor* t : {&boundary->hidden, &boundary->memory}) {
    if (!t->defined()) continue;
    float* p = t->data<float>();
    for (int64_t i = 0; i < t->numel(); ++i) p[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
  }
}

TEST_P(PlanCountTest, ActivationBytesEqualWhatTheStageKeeps) {
  const ModelSpec spec = SmallSpec(GetParam());
  const int total = spec.encoder_layers() + spec.decoder_layers();
  const Batch batch = FullBatch(spec);
  // f32 throughout, so every element the model keeps is 4 bytes, as the plan
  // counts statistics and logits.
  const ActivationShape shape{
      .sequences = kSequences,
      .source_length = kSourceLength,
      .target_length = spec.kind() == ENCODER_ONLY ? kSourceLength : kTargetLength,
      .activation_bytes = 4};
  const std::vector<std::pair<int, int>> slices = {
      {0, total}, {0, 2}, {1, total - 1}, {2, total}, {total - 1, total}};
  for (const auto& [first, last] : slices) {
    for (int pattern = 0; pattern < 3; ++pattern) {
      // No recomputation, every layer, every other layer.
      std::vector<bool> flags;
      if (pattern > 0) {
        for (int g = first; g < last; ++g) flags.push_back(pattern == 1 || g % 2 == 1);
      }
      SCOPED_TRACE(absl::StrCat("layers [", first, ", ", last, ") recompute pattern ", pattern));
      auto stage = ModelStage::Create(spec, DType::kF32, 1, first, last);
      ASSERT_TRUE(stage.ok()) << stage.status();
      ASSERT_TRUE((*stage)->SetRecompute(flags).ok());
      StepContext ctx{.seed = 5};
      StageBoundary input = (*stage)->InputShapes(batch);
      Fill(&input);
      StageSaved saved;
      ASSERT_TRUE((*stage)->Forward(ctx, batch, input, &saved).ok());
      auto counted = CountStageActivations(spec, first, last, flags, shape);
      ASSERT_TRUE(counted.ok()) << counted.status();
      ByteCounter after_forward;
      after_forward.Add(saved);
      EXPECT_EQ(counted->saved, after_forward.total());

      StageBoundary grad = (*stage)->OutputShapes(batch);
      Fill(&grad);
      ASSERT_TRUE((*stage)->BackwardInput(ctx, batch, grad, &saved, 1.0).ok());
      ByteCounter after_backward;
      after_backward.Add(saved);
      // B frees the logits early; the plan keeps counting them until W, which
      // changes nothing at the peak (they and d_logits coexist inside B).
      const int64_t logits =
          last == total ? int64_t{shape.target_length} * kSequences * spec.vocab_size() * kFp32Bytes
                        : 0;
      EXPECT_EQ(counted->saved + counted->backward - logits, after_backward.total());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PlanCountTest, ::testing::ValuesIn(AllCases()),
                         [](const auto& info) { return Name(info.param); });

TEST(PlanMemoryTest, PeakFollowsTheActionOrder) {
  const std::vector<StageActivationBytes> chunks = {{.saved = 10, .backward = 3},
                                                    {.saved = 100, .backward = 30}};
  // F0c0 F0c1 B0c1 W0c1 F1c0 B0c0 W0c0: 10 + 100 + 30 = 140 is the peak.
  const std::vector<Action> actions = {Forward(0, 0), Forward(0, 1),  Backward(0, 1), Weight(0, 1),
                                       Forward(1, 0), Backward(0, 0), Weight(0, 0)};
  EXPECT_EQ(PeakActivationBytes(actions, chunks), 140);
  EXPECT_EQ(PeakActivationBytes({Forward(0, 0), Backward(0, 0), Weight(0, 0)}, chunks), 13);
}

// --- The command -------------------------------------------------------------

// The first line of `output` starting with `prefix` (after leading spaces).
std::string Line(const std::string& output, const std::string& prefix) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    const size_t start = line.find_first_not_of(' ');
    if (start != absl::string_view::npos && line.substr(start, prefix.size()) == prefix) {
      return std::string(line);
    }
  }
  return "";
}

// The number right after `key` in `line` (commas between digit groups allowed).
double NumberAfter(const std::string& line, const std::string& key) {
  const size_t at = line.find(key);
  if (at == std::string::npos) return NAN;
  std::string text = line.substr(at + key.size());
  text = text.substr(0, text.find_first_of(" (;"));
  double value = NAN;
  if (!absl::SimpleAtod(absl::StrReplaceAll(text, {{",", ""}}), &value)) return NAN;
  return value;
}

// The rows of the per-rank memory table: {rank, params, ..., peak live, bubble}.
std::vector<std::vector<double>> RankRows(const std::string& output) {
  std::vector<std::vector<double>> rows;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (absl::StrContains(line, "peak live") && absl::StrContains(line, "rank")) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() != 9) break;
    std::vector<double> row;
    for (const std::string& f : fields) {
      double v = NAN;
      EXPECT_TRUE(absl::SimpleAtod(absl::StrReplaceAll(f, {{",", ""}}), &v)) << line;
      row.push_back(v);
    }
    rows.push_back(row);
  }
  return rows;
}

TEST(PlanCommandTest, TinyParametersEqualTheModel) {
  auto spec = LoadRunSpec(std::string(PIPETRAIN_SOURCE_DIR) + "/configs/tiny.pbtxt", "", {});
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto model = TransformerModel::Create(spec->model(), DType::kF32, 1);
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t expected = (*model)->params().total_elements();
  for (const std::string flags : {"--world 1", "--world 4", "--world 4 --dp 2",
                                  "--world 2 --schedule interleaved --chunks 2 "
                                  "--microbatches 2"}) {
    const auto r = RunPipetrain("plan --spec configs/tiny.pbtxt " + flags);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(NumberAfter(Line(r.output, "parameters:"), "parameters: "), expected) << r.output;
    // Every rank's parameters together are the model's, plus one embedding
    // per extra copy.
    const std::string params_line = Line(r.output, "parameters:");
    const double copies = NumberAfter(params_line, "stages (");
    const double embedding = NumberAfter(params_line, "embedding ");
    double held = 0;
    for (const auto& row : RankRows(r.output)) held += row[1];
    EXPECT_EQ(held, expected + (copies - 1) * embedding) << r.output;
  }
}

TEST(PlanCommandTest, BubbleOfEqualStagesIsTheClosedForm) {
  struct Case {
    std::string flags;
    int p, m, v;
  };
  for (const Case& c :
       {Case{"--world 4 --microbatches 8", 4, 8, 1},
        Case{"--world 4 --microbatches 3 --schedule gpipe", 4, 3, 1},
        Case{"--world 8 --dp 2 --microbatches 4", 4, 4, 1},
        Case{"--world 2 --microbatches 4 --schedule interleaved --chunks 2", 2, 4, 2}}) {
    const auto r =
        RunPipetrain("plan --spec configs/tiny.pbtxt --costs uniform --link_gbps 0 " + c.flags);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string bubble = Line(r.output, "bubble:");
    // W runs after the gradient is sent upstream, so the ramp is (p−1)(F+B)
    // with F = B = W: 2(p−1) / (3vm + 2(p−1)).
    const double ramp = 2.0 * (c.p - 1);
    const double expected = ramp / (3.0 * c.v * c.m + ramp);
    EXPECT_NEAR(NumberAfter(bubble, "simulated "), expected, 5e-5) << c.flags << "\n" << r.output;
    EXPECT_NEAR(NumberAfter(bubble, "closed form "), expected, 5e-5) << bubble;
    EXPECT_NEAR(NumberAfter(bubble, "with W after SEND_B, "), (c.p - 1.0) / (c.v * c.m + c.p - 1.0),
                5e-5)
        << bubble;
  }
}

TEST(PlanCommandTest, M2m200LOn64Gpus) {
  const auto r = RunPipetrain("plan --spec configs/m2m_200L.pbtxt --world 64 --dp 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("64 GPUs = 16 pipeline stages x 4 data-parallel replicas"),
            std::string::npos)
      << r.output;
  // Counted by hand: tied 128k x 1024 embedding; DeepNorm layers with one
  // post-LN per sub-layer.
  const int64_t d = 1024, f = 4096, vocab = 128000;
  const int64_t attention = 4 * d * d + 4 * d, ffn = 2 * d * f + f + d;
  const int64_t encoder = attention + ffn + 2 * 2 * d;
  const int64_t decoder = 2 * attention + ffn + 3 * 2 * d;
  const int64_t expected = vocab * d + 100 * encoder + 100 * decoder;
  EXPECT_EQ(NumberAfter(Line(r.output, "parameters:"), "parameters: "), expected);

  const auto rows = RankRows(r.output);
  ASSERT_EQ(rows.size(), 16u) << r.output;
  // 1F1B with m = 64 >= p: rank r keeps p − r micro-batches.
  for (int rank = 0; rank < 16; ++rank) EXPECT_EQ(rows[rank][7], 16 - rank) << rank;
  for (const auto& row : rows) EXPECT_LT(row[6], 80e9 / (1 << 30)) << r.output;
  // Stage costs differ (the head, the cross-attention), so the simulated
  // bubble is above the equal-stage closed form.
  const std::string bubble = Line(r.output, "bubble:");
  EXPECT_GT(NumberAfter(bubble, "simulated "), NumberAfter(bubble, "closed form ")) << bubble;

  // Interleaving (Megatron's order): rank r runs 2(p − r − 1) + (v − 1)p
  // warm-up forwards, then one more before its first backward.
  const auto inter = RunPipetrain(
      "plan --spec configs/m2m_200L.pbtxt --world 64 --dp 4 --microbatches 32 "
      "--schedule interleaved --chunks 2 --partition balanced");
  ASSERT_EQ(inter.exit_code, 0) << inter.output;
  EXPECT_NE(inter.output.find("(32 virtual stages)"), std::string::npos) << inter.output;
  const auto inter_rows = RankRows(inter.output);
  ASSERT_EQ(inter_rows.size(), 16u) << inter.output;
  for (int rank = 0; rank < 16; ++rank) {
    EXPECT_EQ(inter_rows[rank][7], 2 * (16 - rank - 1) + 16 + 1) << rank;
  }
}

TEST(PlanCommandTest, RecomputationLowersActivationsNotWeights) {
  const std::string base = "plan --spec configs/m2m_200L.pbtxt --world 64 --dp 4";
  const auto none = RunPipetrain(base);
  const auto full = RunPipetrain(base + " --recompute full");
  ASSERT_EQ(none.exit_code, 0) << none.output;
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // B replays every forward: the step takes longer.
  EXPECT_GT(NumberAfter(Line(full.output, "step:"), "step: "),
            NumberAfter(Line(none.output, "step:"), "step: "));
  const auto a = RankRows(none.output), b = RankRows(full.output);
  ASSERT_EQ(a.size(), b.size());
  for (size_t r = 0; r < a.size(); ++r) {
    EXPECT_EQ(a[r][2], b[r][2]);  // weights
    // The model rebuilds a recomputed stage's activations in B and keeps them
    // until W, so a rank with one micro-batch live saves nothing.
    if (a[r][7] > 1) {
      EXPECT_LT(b[r][5], a[r][5]) << r;
    } else {
      EXPECT_EQ(b[r][5], a[r][5]) << r;
    }
  }
}

TEST(PlanCommandTest, BadFlagsAreReported) {
  auto r = RunPipetrain("plan --spec configs/tiny.pbtxt");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--world"), std::string::npos) << r.output;
  r = RunPipetrain("plan --spec configs/tiny.pbtxt --world 6 --dp 4");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("not divisible by --dp=4"), std::string::npos) << r.output;
  r = RunPipetrain("plan --world 4");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--spec"), std::string::npos) << r.output;
  r = RunPipetrain("plan --spec configs/tiny.pbtxt --world 8");
  EXPECT_EQ(r.exit_code, 1) << r.output;  // 8 stages for 4 layers
  EXPECT_NE(r.output.find("stages"), std::string::npos) << r.output;
  r = RunPipetrain("plan --spec configs/tiny.pbtxt --world 2 --schedule zigzag");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("zigzag"), std::string::npos) << r.output;
  r = RunPipetrain("plan --spec configs/tiny.pbtxt --world 2 --costs measured");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--costs"), std::string::npos) << r.output;
}

TEST(PlanCommandTest, SeqChangesTheShapeAndTheCost) {
  const auto short_seq = RunPipetrain("plan --spec configs/tiny.pbtxt --world 2 --seq 8");
  const auto long_seq = RunPipetrain("plan --spec configs/tiny.pbtxt --world 2 --seq 32");
  ASSERT_EQ(short_seq.exit_code, 0) << short_seq.output;
  ASSERT_EQ(long_seq.exit_code, 0) << long_seq.output;
  EXPECT_NE(short_seq.output.find("x (8 + 9) tokens"), std::string::npos) << short_seq.output;
  EXPECT_NE(long_seq.output.find("x (32 + 33) tokens"), std::string::npos) << long_seq.output;
  const auto bad = RunPipetrain("plan --spec configs/tiny.pbtxt --world 2 --seq -1");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("--seq must be >= 1"), std::string::npos) << bad.output;
}

// A corpus run plans with the corpus's longest pairs, not the synthetic
// task's (which it does not use): m2m_200L keeps pairs of up to 128 tokens a
// side, so the encoder is planned at 128 tokens and the decoder at <s> + 128;
// --seq replaces that.
TEST(PlanCommandTest, CorpusRunsPlanWithTheCorpusLongestPairs) {
  const auto corpus = RunPipetrain("plan --spec configs/m2m_200L.pbtxt --world 64 --dp 4");
  ASSERT_EQ(corpus.exit_code, 0) << corpus.output;
  EXPECT_NE(corpus.output.find("x (128 + 129) tokens"), std::string::npos) << corpus.output;
  const auto seq = RunPipetrain("plan --spec configs/m2m_200L.pbtxt --world 64 --dp 4 --seq 64");
  ASSERT_EQ(seq.exit_code, 0) << seq.output;
  EXPECT_NE(seq.output.find("x (64 + 65) tokens"), std::string::npos) << seq.output;
  // At the same token budget, longer pairs cost more attention memory:
  // rank 0 (16 micro-batches live) shows it, no rank needs less.
  const auto long_rows = RankRows(corpus.output), short_rows = RankRows(seq.output);
  ASSERT_EQ(long_rows.size(), short_rows.size());
  EXPECT_GT(long_rows[0][5], short_rows[0][5]);
  for (size_t r = 0; r < long_rows.size(); ++r) EXPECT_GE(long_rows[r][5], short_rows[r][5]) << r;

  // The default sequence count is what a micro-batch's share of
  // tokens_per_batch holds of the longest pairs, counted as the batcher
  // counts them (the target twice, 128 + 2 x 129 = 386), rounded up:
  // ceil(2^20 / (64 x 4) / 386) = 11.
  const std::string batch = Line(corpus.output, "batch:");
  EXPECT_NE(batch.find("x 11 sequences"), std::string::npos) << batch;

  // A decoder-only model reads source <s> target as one sequence: tiny's
  // synthetic pairs of up to 10 + 10 tokens and <s> make 21.
  const auto one_stack = RunPipetrain(
      "plan --spec configs/tiny.pbtxt --world 2 --set model.kind=DECODER_ONLY "
      "--set model.encoder_layers=0 --set model.max_positions=32");
  ASSERT_EQ(one_stack.exit_code, 0) << one_stack.output;
  EXPECT_NE(one_stack.output.find("sequences x 21 tokens"), std::string::npos) << one_stack.output;
}

TEST(PlanCommandTest, TraceIsJson) {
  if (RunCommand("test -x /usr/bin/python3").exit_code != 0) {
    GTEST_SKIP() << "no /usr/bin/python3 to parse the trace";
  }
  const std::string path = ::testing::TempDir() + "/plan_trace.json";
  std::remove(path.c_str());
  const auto r =
      RunPipetrain("plan --spec configs/tiny.pbtxt --world 4 --microbatches 4 --trace " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 4 ranks x 4 micro-batches x (F, B, W) compute events at least.
  const auto check = RunCommand(
      "/usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); "
      "n=sum(1 for e in t[\"traceEvents\"] if e.get(\"ph\")==\"X\" and e.get(\"cat\") in "
      "(\"F\",\"B\",\"W\")); print(\"events\", n); sys.exit(0 if n>=48 else 3)' " +
      path);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  const auto bad =
      RunPipetrain("plan --spec configs/tiny.pbtxt --world 2 --trace /nonexistent_dir/trace.json");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("/nonexistent_dir/trace.json"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace pipetrain
