#include "core/tensor.h"

#include <cmath>

#include "core/philox.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

TEST(TensorTest, ViewsAliasTheirStorage) {
  Tensor flat = Tensor::Zeros({10}, DType::kF32);
  Tensor view = flat.View(4, {2, 3});
  view.Fill(2.0);
  EXPECT_EQ(flat.At(3), 0.0);
  EXPECT_EQ(flat.At(4), 2.0);
  EXPECT_EQ(flat.At(9), 2.0);
  EXPECT_EQ(view.dim(-1), 3);
}

TEST(TensorTest, CloneIsIndependent) {
  Tensor a = Tensor::FromVector({1, 2, 3}, {3}, DType::kF64);
  Tensor b = a.Clone();
  b.Fill(0);
  EXPECT_EQ(a.At(2), 3.0);
}

TEST(TensorTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  // 1 + 2^-8 lies exactly between two bf16 values: ties go to the even one (1.0).
  EXPECT_EQ(FloatToBf16(1.00390625f), 0x3f80);
  // 1 + 3·2^-8 is a tie too; the even neighbour is 1 + 2^-6.
  EXPECT_EQ(FloatToBf16(1.01171875f), 0x3f82);
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  Tensor f = Tensor::FromVector({0.1, -3.5, 1e30}, {3}, DType::kF32);
  Tensor b = f.To(DType::kBF16);
  EXPECT_EQ(b.nbytes(), 6u);
  EXPECT_NEAR(b.At(0), 0.1, 0.1 / 128);
  EXPECT_EQ(b.At(1), -3.5);
  EXPECT_NEAR(b.At(2), 1e30, 1e30 / 128);
}

TEST(PhiloxTest, KnownAnswer) {
  // Random123's published known-answer vector for Philox4x32-10 with zero
  // counter and key.
  auto out = Philox4x32({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
}

TEST(PhiloxTest, StreamsDependOnEveryKeyField) {
  RngKey base{.seed = 7, .step = 3, .layer = 2, .microbatch = 1, .site = 0};
  const uint32_t b = PhiloxStream(base).Bits(5);
  RngKey k = base;
  k.seed = 8;
  EXPECT_NE(PhiloxStream(k).Bits(5), b);
  k = base;
  k.step = 4;
  EXPECT_NE(PhiloxStream(k).Bits(5), b);
  k = base;
  k.layer = 3;
  EXPECT_NE(PhiloxStream(k).Bits(5), b);
  k = base;
  k.microbatch = 2;
  EXPECT_NE(PhiloxStream(k).Bits(5), b);
  k = base;
  k.site = 1;
  EXPECT_NE(PhiloxStream(k).Bits(5), b);
  EXPECT_EQ(PhiloxStream(base).Bits(5), b);
}

TEST(PhiloxTest, UniformAndNormalMoments) {
  PhiloxStream s(RngKey{.seed = 42});
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; ++i) {
    float u = s.Uniform(i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    su += u;
    double z = s.Normal(i);
    sn += z;
    sn2 += z * z;
  }
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.01);
}

}  // namespace
}  // namespace pipetrain
