// Whole-model forward semantics against an independent implementation:
// tests/golden/make_model_golden.py builds the same small models in PyTorch
// (float64) from the documented semantics, and tests/golden/model_golden.txt
// holds its loss sums and the sum / sum of squares of every parameter's
// gradient. Here pipetrain builds each model in f64 with the same
// closed-form parameters and batch and must agree.
//
// The finite-difference tests prove that pipetrain's gradients are those of
// ITS forward pass; this test proves that the forward pass is the model the
// docs describe (norm placement, α, BranchNorm's schedule, masks, positions,
// label smoothing, tied output projection, batch layout).
//
// Tolerance: 1e-9 relative. Both sides compute in float64, so they differ only
// by rounding (summation order in BLAS vs PyTorch kernels, exp/erf/log
// implementations): ~1e-15 per op, a few 1e-14 after a few layers. 1e-9 is
// far above that and far below any semantic slip (an LN eps of 1e-5 vs 1e-6,
// or a float32 vs a double label-smoothing ε, moves the loss by > 1e-9).
// Many gradient sums are exactly zero in exact arithmetic (a bias feeding an
// LN, the key bias under softmax), so a sum is compared relative to its
// natural size sqrt(n·Σg²), and sums of squares get an absolute floor tied to
// the whole model's gradient norm.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/config/spec_loader.h"
#include "core/data/collate.h"
#include "gtest/gtest.h"
#include "models/spec_checks.h"
#include "models/transformer_model.h"

namespace pipetrain {
namespace {

constexpr double kRelTol = 1e-9;

const std::string& GoldenPath() {
  static const std::string path =
      std::string(PIPETRAIN_SOURCE_DIR) + "/tests/golden/model_golden.txt";
  return path;
}

struct GoldenTensor {
  int64_t rows = 0, cols = 0;
  std::vector<int32_t> values;
};

struct GoldenParam {
  std::string name;
  Shape shape;
  double sum = 0, sumsq = 0;
};

struct GoldenCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> fields;  // spec fields, in file order
  std::vector<std::vector<std::string>> overrides;          // STACK FIRST LAST NORM
  int64_t step = 0;
  std::vector<SentencePair> pairs;
  std::map<std::string, GoldenTensor> tensors;
  double loss_sum = 0, nll_sum = 0;
  int64_t tokens = -1;
  std::vector<GoldenParam> params;

  std::string Field(const std::string& key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) return v;
    }
    return "";
  }
};

double ParseDouble(const std::string& s, bool* ok) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') *ok = false;
  return v;
}

int64_t ParseInt(const std::string& s, bool* ok) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0') *ok = false;
  return v;
}

// Parses the whole golden file; *error names the line of the first problem.
std::vector<GoldenCase> LoadGolden(std::string* error) {
  std::vector<GoldenCase> cases;
  std::ifstream in(GoldenPath());
  if (!in) {
    *error = "cannot read " + GoldenPath() + " (regenerate it with make_model_golden.py)";
    return {};
  }
  std::string line;
  int line_no = 0;
  GoldenCase* current = nullptr;
  bool ok = true;
  auto fail = [&](const std::string& why) {
    *error = absl::StrCat(GoldenPath(), ":", line_no, ": ", why, ": ", line);
    return std::vector<GoldenCase>();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> tok = absl::StrSplit(line, ' ', absl::SkipEmpty());
    const std::string& key = tok[0];
    if (key == "case") {
      if (tok.size() != 2) return fail("expected: case NAME");
      cases.emplace_back();
      current = &cases.back();
      current->name = tok[1];
      continue;
    }
    if (current == nullptr) return fail("line outside a case");
    if (key == "end") {
      current = nullptr;
    } else if (key == "norm_override") {
      if (tok.size() != 5) return fail("expected: norm_override STACK FIRST LAST NORM");
      current->overrides.emplace_back(tok.begin() + 1, tok.end());
    } else if (key == "step") {
      current->step = ParseInt(tok.at(1), &ok);
    } else if (key == "pair") {
      SentencePair pair;
      bool target = false;
      for (size_t i = 1; i < tok.size(); ++i) {
        if (tok[i] == "|") {
          target = true;
          continue;
        }
        (target ? pair.tgt : pair.src).push_back(static_cast<int32_t>(ParseInt(tok[i], &ok)));
      }
      current->pairs.push_back(pair);
    } else if (key == "src_ids" || key == "src_lengths" || key == "tgt_in" ||
               key == "tgt_lengths" || key == "labels") {
      if (tok.size() < 3) return fail("expected: NAME ROWS COLS VALUES...");
      GoldenTensor t;
      t.rows = ParseInt(tok[1], &ok);
      t.cols = ParseInt(tok[2], &ok);
      for (size_t i = 3; i < tok.size(); ++i) {
        t.values.push_back(static_cast<int32_t>(ParseInt(tok[i], &ok)));
      }
      if (static_cast<int64_t>(t.values.size()) != t.rows * t.cols) {
        return fail("value count is not ROWS·COLS");
      }
      current->tensors[key] = t;
    } else if (key == "loss_sum") {
      current->loss_sum = ParseDouble(tok.at(1), &ok);
    } else if (key == "nll_sum") {
      current->nll_sum = ParseDouble(tok.at(1), &ok);
    } else if (key == "tokens") {
      current->tokens = ParseInt(tok.at(1), &ok);
    } else if (key == "param") {
      if (tok.size() != 5) return fail("expected: param NAME SHAPE SUM SUMSQ");
      GoldenParam p;
      p.name = tok[1];
      const std::vector<std::string> dims = absl::StrSplit(tok[2], 'x');
      for (const std::string& dim : dims) p.shape.push_back(ParseInt(dim, &ok));
      p.sum = ParseDouble(tok[3], &ok);
      p.sumsq = ParseDouble(tok[4], &ok);
      current->params.push_back(p);
    } else {
      if (tok.size() != 2) return fail("expected: FIELD VALUE");
      current->fields.emplace_back(key, tok[1]);
    }
    if (!ok) return fail("malformed number");
  }
  if (current != nullptr) {
    *error = absl::StrCat(GoldenPath(), ": case ", current->name, " has no 'end' (truncated?)");
    return {};
  }
  return cases;
}

// Loaded once; a load error is reported by ModelGoldenFileTest (it happens
// while the parameterised cases are being listed, outside any test).
struct LoadedGolden {
  std::vector<GoldenCase> cases;
  std::string error;
};

const LoadedGolden& Loaded() {
  static const LoadedGolden* loaded = [] {
    auto* l = new LoadedGolden;
    l->cases = LoadGolden(&l->error);
    return l;
  }();
  return *loaded;
}

const std::vector<GoldenCase>& Golden() { return Loaded().cases; }

std::vector<std::string> CaseNames() {
  std::vector<std::string> names;
  for (const GoldenCase& c : Golden()) names.push_back(c.name);
  return names;
}

const GoldenCase* FindCase(const std::string& name) {
  for (const GoldenCase& c : Golden()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// The ModelSpec of a golden record. Every field the file names must be known
// here, so the two sides cannot silently drift apart.
absl::StatusOr<ModelSpec> SpecOf(const GoldenCase& g) {
  ModelSpec spec;
  spec.set_name(g.name);
  bool ok = true;
  for (const auto& [key, value] : g.fields) {
    auto as_int = [&] { return static_cast<int32_t>(ParseInt(value, &ok)); };
    // Float fields are float32 in the proto: strtof rounds the decimal text
    // exactly as the script's np.float32 does.
    auto as_float = [&] { return std::strtof(value.c_str(), nullptr); };
    bool parsed = true;
    if (key == "kind") {
      ModelKind kind = MODEL_KIND_UNSPECIFIED;
      parsed = ModelKind_Parse(value, &kind);
      spec.set_kind(kind);
    } else if (key == "activation") {
      Activation activation = ACTIVATION_UNSPECIFIED;
      parsed = Activation_Parse(value, &activation);
      spec.set_activation(activation);
    } else if (key == "norm") {
      ResidualNorm norm = RESIDUAL_NORM_UNSPECIFIED;
      parsed = ResidualNorm_Parse(value, &norm);
      spec.set_norm(norm);
    } else if (key == "branch_shape") {
      BranchNormShape shape = BRANCH_NORM_SHAPE_UNSPECIFIED;
      parsed = BranchNormShape_Parse(value, &shape);
      spec.mutable_branch_norm()->set_shape(shape);
    } else if (key == "vocab_size") {
      spec.set_vocab_size(as_int());
    } else if (key == "d_model") {
      spec.set_d_model(as_int());
    } else if (key == "ffn_dim") {
      spec.set_ffn_dim(as_int());
    } else if (key == "heads") {
      spec.set_heads(as_int());
    } else if (key == "encoder_layers") {
      spec.set_encoder_layers(as_int());
    } else if (key == "decoder_layers") {
      spec.set_decoder_layers(as_int());
    } else if (key == "max_positions") {
      spec.set_max_positions(as_int());
    } else if (key == "branch_max_norm_step") {
      spec.mutable_branch_norm()->set_max_norm_step(ParseInt(value, &ok));
    } else if (key == "tied_embeddings") {
      parsed = value == "true" || value == "false";
      spec.set_tied_embeddings(value == "true");
    } else if (key == "label_smoothing") {
      spec.set_label_smoothing(as_float());
    } else if (key == "layer_norm_eps") {
      spec.set_layer_norm_eps(as_float());
    } else if (key == "encoder_alpha") {
      spec.set_encoder_alpha(as_float());
    } else if (key == "decoder_alpha") {
      spec.set_decoder_alpha(as_float());
    } else if (key == "branch_start_scale") {
      spec.mutable_branch_norm()->set_start_scale(as_float());
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("case ", g.name, ": unknown spec field '", key, "'"));
    }
    if (!parsed || !ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("case ", g.name, ": bad value '", value, "' of ", key));
    }
  }
  for (const std::vector<std::string>& o : g.overrides) {
    NormOverride* no = spec.add_norm_override();
    Stack stack = STACK_UNSPECIFIED;
    ResidualNorm norm = RESIDUAL_NORM_UNSPECIFIED;
    if (!Stack_Parse(o[0], &stack) || !ResidualNorm_Parse(o[3], &norm)) {
      return absl::InvalidArgumentError(absl::StrCat("case ", g.name, ": bad norm_override"));
    }
    no->set_stack(stack);
    no->set_first_layer(static_cast<int32_t>(ParseInt(o[1], &ok)));
    no->set_last_layer(static_cast<int32_t>(ParseInt(o[2], &ok)));
    no->set_norm(norm);
  }
  // The golden models are meant to be valid specs (norm rules included);
  // dropout stays 0.
  constexpr SpecCheck kNormChecks[] = {CheckModelNorms};
  absl::Status valid = ValidateModelSpec(spec, g.name, kNormChecks);
  if (!valid.ok()) return valid;
  return spec;
}

// The closed-form parameter pattern of make_model_golden.py.
void FillParameters(ParameterStore& store) {
  const std::vector<ParameterInfo>& infos = store.infos();
  for (size_t k = 0; k < infos.size(); ++k) {
    const std::string& name = infos[k].name;
    const bool gain = name.ends_with(".gamma") || name.ends_with("head_scale");
    Tensor p = store.param(static_cast<ParamId>(k));
    double* v = p.data<double>();
    for (int64_t j = 0; j < p.numel(); ++j) {
      v[j] = 0.3 * std::sin(0.37 * static_cast<double>(j) + 1.3 * static_cast<double>(k)) +
             (gain ? 1.0 : 0.0);
    }
  }
}

void CompareTensor(const std::string& where, const std::string& name, const Tensor& actual,
                   const std::map<std::string, GoldenTensor>& golden,
                   std::vector<std::string>* errors) {
  auto it = golden.find(name);
  if (it == golden.end()) {
    if (actual.defined())
      errors->push_back(
          absl::StrCat(where, ": collate set ", name, " but the golden batch has none"));
    return;
  }
  const GoldenTensor& g = it->second;
  const int64_t rows = actual.defined() ? actual.dim(0) : -1;
  const int64_t cols = actual.defined() && actual.rank() == 2 ? actual.dim(1) : 1;
  if (rows != g.rows || cols != g.cols) {
    errors->push_back(
        absl::StrCat(where, ": ", name, " is ", rows, "x", cols, ", golden ", g.rows, "x", g.cols));
    return;
  }
  std::vector<int32_t> values(actual.data<int32_t>(), actual.data<int32_t>() + actual.numel());
  if (values != g.values) {
    errors->push_back(absl::StrCat(where, ": ", name, " = [", absl::StrJoin(values, " "),
                                   "], golden [", absl::StrJoin(g.values, " "), "]"));
  }
}

bool Close(double actual, double golden, double tol) { return std::abs(actual - golden) <= tol; }

struct RunOptions {
  // Dropout is 0 everywhere, so both modes must give the golden values; true
  // is the path training takes, where p = 0 dropout must be the identity.
  bool training = true;
  // Deliberate slips, for the test that shows the comparison can fail.
  std::function<void(ModelSpec&)> spec;
  std::function<void(ParameterStore&)> params;
};

// Runs one golden case through pipetrain and returns every disagreement,
// each naming the case and, for gradients, the parameter.
std::vector<std::string> RunCase(const GoldenCase& g, const RunOptions& options = {}) {
  std::vector<std::string> errors;
  const std::string where =
      absl::StrCat("case ", g.name, options.training ? "" : " (training=false)");
  auto spec_or = SpecOf(g);
  if (!spec_or.ok()) return {spec_or.status().ToString()};
  ModelSpec spec = *spec_or;
  if (options.spec) options.spec(spec);
  auto model_or = TransformerModel::Create(spec, DType::kF64, /*seed=*/1);
  if (!model_or.ok()) return {absl::StrCat(where, ": ", model_or.status().ToString())};
  TransformerModel& model = **model_or;
  ParameterStore& store = model.params();

  // Same names, shapes and order, or the fill pattern would differ.
  const std::vector<ParameterInfo>& infos = store.infos();
  if (infos.size() != g.params.size()) {
    errors.push_back(absl::StrCat(where, ": pipetrain registers ", infos.size(),
                                  " parameters, the golden has ", g.params.size()));
  }
  for (size_t k = 0; k < std::min(infos.size(), g.params.size()); ++k) {
    if (infos[k].name != g.params[k].name || infos[k].shape != g.params[k].shape) {
      errors.push_back(absl::StrCat(where, ": parameter #", k, " is ", infos[k].name, " ",
                                    ShapeString(infos[k].shape), ", golden ", g.params[k].name, " ",
                                    ShapeString(g.params[k].shape)));
    }
  }
  if (!errors.empty()) return errors;
  FillParameters(store);
  if (options.params) options.params(store);

  auto batch_or = Collate(spec.kind(), g.pairs);
  if (!batch_or.ok()) return {absl::StrCat(where, ": ", batch_or.status().ToString())};
  const Batch& batch = *batch_or;
  CompareTensor(where, "src_ids", batch.src_ids, g.tensors, &errors);
  CompareTensor(where, "src_lengths", batch.src_lengths, g.tensors, &errors);
  CompareTensor(where, "tgt_in", batch.tgt_in, g.tensors, &errors);
  CompareTensor(where, "tgt_lengths", batch.tgt_lengths, g.tensors, &errors);
  CompareTensor(where, "labels", batch.labels, g.tensors, &errors);
  if (!errors.empty()) return errors;

  const StepContext ctx{.seed = 7, .step = g.step, .microbatch = 0, .training = options.training};
  ModelSaved saved;
  auto stats = model.Forward(ctx, batch, &saved);
  if (!stats.ok()) return {absl::StrCat(where, ": Forward: ", stats.status().ToString())};
  absl::Status back = model.Backward(ctx, batch, &saved, /*grad_scale=*/1.0);
  if (!back.ok()) return {absl::StrCat(where, ": Backward: ", back.ToString())};

  if (!Close(stats->loss_sum, g.loss_sum, kRelTol * std::abs(g.loss_sum))) {
    errors.push_back(
        absl::StrFormat("%s: loss_sum %.17g, golden %.17g", where, stats->loss_sum, g.loss_sum));
  }
  if (!Close(stats->nll_sum, g.nll_sum, kRelTol * std::abs(g.nll_sum))) {
    errors.push_back(
        absl::StrFormat("%s: nll_sum %.17g, golden %.17g", where, stats->nll_sum, g.nll_sum));
  }
  if (stats->tokens != g.tokens) {
    errors.push_back(absl::StrCat(where, ": tokens ", stats->tokens, ", golden ", g.tokens));
  }

  double total_sumsq = 0;
  for (const GoldenParam& p : g.params) total_sumsq += p.sumsq;
  const double grad_norm = std::sqrt(total_sumsq);
  for (size_t k = 0; k < g.params.size(); ++k) {
    const GoldenParam& p = g.params[k];
    const Tensor grad = store.grad(static_cast<ParamId>(k));
    double sum = 0, sumsq = 0;
    for (int64_t j = 0; j < grad.numel(); ++j) {
      const double x = grad.data<double>()[j];
      sum += x;
      sumsq += x * x;
    }
    const double n = static_cast<double>(grad.numel());
    const double sum_tol = kRelTol * std::sqrt(n * p.sumsq) + 1e-12 * grad_norm;
    const double sumsq_tol = kRelTol * p.sumsq + 1e-24 * total_sumsq;
    if (!Close(sum, p.sum, sum_tol) || !Close(sumsq, p.sumsq, sumsq_tol)) {
      errors.push_back(absl::StrFormat(
          "%s: gradient of %s: sum %.17g (golden %.17g), sum of squares %.17g (golden %.17g)",
          where, p.name, sum, p.sum, sumsq, p.sumsq));
    }
  }
  return errors;
}

class ModelGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelGoldenTest, MatchesPyTorch) {
  const GoldenCase* g = FindCase(GetParam());
  ASSERT_NE(g, nullptr);
  std::vector<std::string> errors = RunCase(*g);
  const std::vector<std::string> eval = RunCase(*g, {.training = false, .spec = {}, .params = {}});
  errors.insert(errors.end(), eval.begin(), eval.end());
  EXPECT_TRUE(errors.empty()) << errors.size() << " disagreement(s) with " << GoldenPath() << ":\n"
                              << absl::StrJoin(errors, "\n");
}

INSTANTIATE_TEST_SUITE_P(Golden, ModelGoldenTest, ::testing::ValuesIn(CaseNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// A golden file that lost cases would make the test above pass vacuously.
TEST(ModelGoldenFileTest, CoversEveryNormKindAndModelKind) {
  ASSERT_EQ(Loaded().error, "");
  std::set<std::string> norms, kinds, branch_shapes;
  for (const GoldenCase& g : Golden()) {
    norms.insert(g.Field("norm"));
    for (const auto& o : g.overrides) norms.insert(o[3]);
    kinds.insert(g.Field("kind"));
    if (g.Field("norm") == "BRANCHNORM") {
      const int64_t t = std::atoll(g.Field("branch_max_norm_step").c_str());
      // Mid-schedule, where the rescaling is active and not yet the identity.
      EXPECT_GT(g.step, 0) << g.name;
      EXPECT_LT(g.step, t) << g.name;
      branch_shapes.insert(g.Field("branch_shape"));
    }
    EXPECT_EQ(g.Field("label_smoothing"), "0.1") << g.name;
    EXPECT_FALSE(g.params.empty()) << g.name;
  }
  for (const char* norm : {"POST_LN", "PRE_LN", "DEEPNORM", "NORMFORMER", "SUBLN", "BRANCHNORM",
                           "FOUNDATION_LN", "UPSCALE_LN"}) {
    EXPECT_EQ(norms.count(norm), 1u) << "no golden case uses " << norm;
  }
  for (const char* kind : {"ENCODER_DECODER", "DECODER_ONLY", "ENCODER_ONLY"}) {
    EXPECT_EQ(kinds.count(kind), 1u) << "no golden case of kind " << kind;
  }
  EXPECT_EQ(branch_shapes, (std::set<std::string>{"LINEAR_SCALE", "NORMALIZED_POWER"}));
}

// The comparison must be able to fail: small semantic slips are caught and
// reported with the case and the parameter.
TEST(ModelGoldenFileTest, ComparisonCatchesSmallSlips) {
  const GoldenCase* g = FindCase("ed_pre_ln");
  ASSERT_NE(g, nullptr);
  ASSERT_TRUE(RunCase(*g).empty());

  // LN eps 1e-5 → 1.1e-5.
  std::vector<std::string> errors =
      RunCase(*g, {.training = true,
                   .spec = [](ModelSpec& s) { s.set_layer_norm_eps(1.1e-5f); },
                   .params = {}});
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("case ed_pre_ln"), std::string::npos) << errors[0];

  // One weight changed by 1e-7.
  errors = RunCase(*g, {.training = true, .spec = {}, .params = [](ParameterStore& store) {
                          store.flat_params().data<double>()[store.total_elements() / 2] += 1e-7;
                        }});
  ASSERT_FALSE(errors.empty());
  bool names_parameter = false;
  for (const std::string& e : errors) {
    names_parameter |= e.find("gradient of decoder.") != std::string::npos;
  }
  EXPECT_TRUE(names_parameter) << absl::StrJoin(errors, "\n");

  // BranchNorm one step later in its schedule.
  const GoldenCase* branch = FindCase("ed_branchnorm_linear_mid");
  ASSERT_NE(branch, nullptr);
  GoldenCase later = *branch;
  later.step += 1;
  EXPECT_FALSE(RunCase(later).empty());
}

}  // namespace
}  // namespace pipetrain
