// Registering parameters stays linear in their number (issue 13 §7): a scan
// of the names registered so far made 2000 + 2000 layers take 17 s and
// 65,536 layers minutes. The test counts the name comparisons registration
// makes (ParameterStore::name_comparisons) rather than timing it, so it
// fails on a quadratic store however fast the machine; the wall-clock view
// is bench/param_registration_bench.cc.
#include "models/parameter_store.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "gtest/gtest.h"
#include "models/model_stage.h"

namespace pipetrain {
namespace {

// An encoder-decoder of `layers` + `layers` layers, as narrow as allowed, so
// building it costs registration and little else.
ModelSpec DeepNarrowModel(int layers) {
  RunSpec spec;
  ModelSpec& m = *spec.mutable_model();
  m.set_kind(ENCODER_DECODER);
  m.set_vocab_size(8);
  m.set_d_model(2);
  m.set_ffn_dim(2);
  m.set_heads(1);
  m.set_encoder_layers(layers);
  m.set_decoder_layers(layers);
  m.set_norm(PRE_LN);
  ApplyDefaults(&spec);
  return spec.model();
}

TEST(ParameterStoreTest, RegistrationComparesNamesAboutOncePerParameter) {
  ParameterStore store(DType::kF32);
  constexpr int kParams = 20000;
  for (int i = 0; i < kParams; ++i) {
    store.Add(absl::StrCat("layer.", i, ".weight"), {1}, {InitKind::kZeros});
  }
  // A scan compares each new name with every earlier one: 2e8 comparisons.
  // The index compares only names that share a hash.
  EXPECT_LE(store.name_comparisons(), kParams) << "registration is not linear in parameters";
  EXPECT_EQ(store.infos().size(), static_cast<size_t>(kParams));
}

TEST(ParameterStoreTest, ModelRegistrationIsLinearInLayers) {
  // 4x the layers must cost at most ~4x the comparisons (8x allowed); a
  // quadratic registration makes it 16x. Counted, not timed.
  int64_t comparisons[2] = {0, 0};
  size_t parameters[2] = {0, 0};
  const int layers[2] = {250, 1000};
  for (int i = 0; i < 2; ++i) {
    auto stage =
        ModelStage::Create(DeepNarrowModel(layers[i]), DType::kF32, /*seed=*/1, 0, 2 * layers[i]);
    ASSERT_TRUE(stage.ok()) << stage.status();
    comparisons[i] = (*stage)->params().name_comparisons();
    parameters[i] = (*stage)->params().infos().size();
  }
  EXPECT_GT(parameters[1], 3 * parameters[0]);
  EXPECT_LE(comparisons[1], static_cast<int64_t>(parameters[1]))
      << comparisons[1] << " name comparisons to register " << parameters[1] << " parameters";
  EXPECT_LE(comparisons[1], 8 * std::max<int64_t>(comparisons[0], 1) + 64)
      << "4x the layers took " << comparisons[1] << " comparisons against " << comparisons[0];
}

TEST(ParameterStoreTest, DuplicateNameStillAborts) {
  EXPECT_DEATH(
      {
        ParameterStore store(DType::kF32);
        store.Add("encoder.0.fc1.weight", {2, 2}, {InitKind::kZeros});
        store.Add("encoder.0.fc1.weight", {2, 2}, {InitKind::kZeros});
      },
      "duplicate parameter name encoder.0.fc1.weight");
}

TEST(ParameterStoreTest, OffsetsFollowRegistrationOrder) {
  ParameterStore store(DType::kF32);
  const ParamId a = store.Add("a", {2, 3}, {InitKind::kOnes});
  const ParamId b = store.Add("b", {4}, {InitKind::kZeros});
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(store.infos()[b].offset, 6);
  EXPECT_EQ(store.total_elements(), 10);
}

}  // namespace
}  // namespace pipetrain
