// chrF and chrF++ on cases small enough to work out by hand; the expected
// numbers are derived in the comments (sacreBLEU agrees with each, and
// tests/metrics_sacrebleu_test.cc compares on real data). With beta = 2,
// F = 5·P·R / (4·P + R), which is P itself when P = R.
#include "core/metrics/chrf.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pipetrain {
namespace {

TEST(ChrfTest, PerfectMatchIs100) {
  const ChrfScore s = CorpusChrf({"Привет, мир!"}, {{"Привет, мир!"}});
  EXPECT_DOUBLE_EQ(s.score, 100.0);
  EXPECT_EQ(s.Format(), "chrF2 = 100.00");
  ASSERT_EQ(s.stats.size(), 6u);
  // "Привет,мир!" is 11 code points (not bytes): 11 unigrams, 6 six-grams.
  EXPECT_EQ(s.stats[0].hyp, 11);
  EXPECT_EQ(s.stats[5].hyp, 6);
}

TEST(ChrfTest, EmptyHypothesisIsZero) {
  // No hypothesis n-gram of any order: no order is effective, score 0.
  EXPECT_EQ(CorpusChrf({""}, {{"abc"}}).score, 0.0);
  EXPECT_EQ(CorpusChrf({"xyz"}, {{"abc"}}).score, 0.0);  // nothing matches
}

TEST(ChrfTest, ShortHypothesisUsesEffectiveOrder) {
  // hyp "ab", ref "abc":
  //   order 1: P = 2/2, R = 2/3;  order 2: "ab" vs {ab, bc}: P = 1, R = 1/2
  //   order 3: the hypothesis has none: not counted; orders 4-6: neither has.
  // P = 1, R = (2/3 + 1/2)/2 = 7/12, F = 5·(7/12) / (4 + 7/12) = 35/55 = 7/11.
  EXPECT_NEAR(CorpusChrf({"ab"}, {{"abc"}}).score, 700.0 / 11.0, 1e-12);
}

TEST(ChrfTest, EpsSmoothingAveragesTheFScoresOfAllOrders) {
  // Same pair, chrF++.py style: F per order is 5/7 (P = 1, R = 2/3), 5/9
  // (P = 1, R = 1/2), 0 (no hypothesis trigram: P = eps, R = 0) and about
  // 1e-16 for the orders neither side has. (5/7 + 5/9)/6 = 80/378.
  ChrfOptions options;
  options.eps_smoothing = true;
  EXPECT_NEAR(CorpusChrf({"ab"}, {{"abc"}}, options).score, 100.0 * 80.0 / 63.0 / 6.0, 1e-12);
}

TEST(ChrfTest, WhitespaceIsIgnored) {
  // Whitespace, Python's definition (NBSP, U+3000 included), is removed
  // before the character n-grams are taken.
  EXPECT_DOUBLE_EQ(CorpusChrf({"a b\u00a0c"}, {{"abc"}}).score, 100.0);
  EXPECT_DOUBLE_EQ(CorpusChrf({"你 好\u3000世界"}, {{"你好世界"}}).score, 100.0);
}

TEST(ChrfTest, CaseMatters) { EXPECT_LT(CorpusChrf({"ABC"}, {{"abc"}}).score, 1.0); }

TEST(ChrfTest, ChrfAndChrfPlusPlus) {
  // hyp "ab cd", ref "ab ce": characters "abcd" against "abce":
  //   order 1: 3/4 (P = R), order 2: {ab bc cd} vs {ab bc ce}: 2/3,
  //   order 3: 1/2, order 4: 0/1 (both have one, so it counts, as 0);
  //   orders 5-6: neither side has one.
  // chrF: P = R = (3/4 + 2/3 + 1/2 + 0)/4 = 23/48.
  const ChrfScore chrf = CorpusChrf({"ab cd"}, {{"ab ce"}});
  EXPECT_NEAR(chrf.score, 100.0 * 23.0 / 48.0, 1e-12);
  // chrF++ adds words: unigrams {ab, cd} vs {ab, ce}: 1/2; the bigram
  // "ab cd" vs "ab ce": 0. P = R = (23/12 + 1/2 + 0)/6 = 29/72.
  const ChrfScore chrfpp = CorpusChrf({"ab cd"}, {{"ab ce"}}, /*word_order=*/2);
  EXPECT_NEAR(chrfpp.score, 100.0 * 29.0 / 72.0, 1e-12);
  EXPECT_EQ(chrfpp.stats.size(), 8u);
  EXPECT_EQ(chrfpp.Format(), "chrF2++ = 40.28");
}

TEST(ChrfTest, ChrfPlusPlusSplitsOneEdgePunctuationMark) {
  // "hi." → "hi" "." and "(hi)" → "(hi" ")" (only the last mark, as in the
  // reference); a lone "." stays. So "hi ." and "hi." give the same words,
  // and "(hi)" shares no word with "( hi )" but ")".
  const ChrfScore same = CorpusChrf({"hi."}, {{"hi ."}}, 2);
  EXPECT_DOUBLE_EQ(same.score, 100.0);
  const ChrfScore parens = CorpusChrf({"(hi)"}, {{"( hi )"}}, 2);
  EXPECT_EQ(parens.stats[6].match, 1);  // ")" of the two words "(hi" ")"
  EXPECT_EQ(parens.stats[6].hyp, 2);
  EXPECT_EQ(parens.stats[6].ref, 3);
}

TEST(ChrfTest, BestReferencePerSentence) {
  // Of two references the one with the higher sentence chrF gives the
  // statistics: "abc" matches the second exactly.
  EXPECT_DOUBLE_EQ(CorpusChrf({"abc"}, {{"xyz"}, {"abc"}}).score, 100.0);
}

TEST(ChrfTest, EmptyReferenceHidesTheHypothesis) {
  // sacreBLEU counts no hypothesis n-gram of an order the reference lacks,
  // so "cd" against an empty reference adds nothing and the corpus stays
  // perfect.
  EXPECT_DOUBLE_EQ(CorpusChrf({"ab", "cd"}, {{"ab", ""}}).score, 100.0);
}

TEST(ChrfTest, CorpusStatisticsAreSummed) {
  // Sentence 1: "ab"/"ab" (orders 1-2: 2/2, 1/1); sentence 2: "a"/"b"
  // (order 1: 0/1; order 2 the reference lacks). Summed: order 1: 2/3,
  // order 2: 1/1. P = R = (2/3 + 1)/2 = 5/6.
  EXPECT_NEAR(CorpusChrf({"ab", "a"}, {{"ab", "b"}}).score, 100.0 * 5.0 / 6.0, 1e-12);
}

}  // namespace
}  // namespace pipetrain
