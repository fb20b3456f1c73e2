// BLEU and its 13a tokenizer on cases small enough to work out by hand; the
// expected numbers are derived in the comments (sacreBLEU agrees with each,
// and tests/metrics_sacrebleu_test.cc compares on real data).
#include "core/metrics/bleu.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/metrics/metric_input.h"
#include "core/metrics/tokenizer_13a.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

using Refs = std::vector<std::vector<std::string>>;

// 13a ----------------------------------------------------------------------

TEST(Tokenize13aTest, SplitsAsciiPunctuation) {
  EXPECT_EQ(Tokenize13a("Hello, world!"), "Hello , world !");
  EXPECT_EQ(Tokenize13a("(test) $5 50% a/b x=y"), "( test ) $ 5 50 % a / b x = y");
  EXPECT_EQ(Tokenize13a("Привет, мир!"), "Привет , мир !");
}

TEST(Tokenize13aTest, KeepsApostrophesHyphensAndNonAscii) {
  EXPECT_EQ(Tokenize13a("don't re-run"), "don't re-run");
  // Full-width punctuation is not ASCII: untouched.
  EXPECT_EQ(Tokenize13a("你好。世界！"), "你好。世界！");
}

TEST(Tokenize13aTest, PeriodsAndCommasBetweenDigitsStay) {
  EXPECT_EQ(Tokenize13a("1,000.5"), "1,000.5");
  EXPECT_EQ(Tokenize13a("v2.0 3.14,"), "v2.0 3.14 ,");
  // A period after a non-digit splits off, and so does the digit after it.
  EXPECT_EQ(Tokenize13a("end. x.5 1."), "end . x . 5 1 .");
  // "a.." : "a." matches first, the second "." has no character left of it
  // that the left-to-right rule has not used, so the next rule splits it.
  EXPECT_EQ(Tokenize13a("a.. ..a .5 ,5 a.b,c"), "a . . . . a . 5 , 5 a . b , c");
}

TEST(Tokenize13aTest, DashSplitsOnlyAfterADigit) {
  EXPECT_EQ(Tokenize13a("1-2 a-b x-1 2-"), "1 - 2 a-b x-1 2 -");
}

TEST(Tokenize13aTest, UnescapesEntitiesInOrder) {
  EXPECT_EQ(Tokenize13a("&quot;quoted&quot; &amp; more"), "\" quoted \" & more");
  // &amp; first, then &lt;/&gt; over the result: "&amp;lt;" ends as "<".
  EXPECT_EQ(Tokenize13a("&amp;lt;b&amp;gt;"), "< b >");
  EXPECT_EQ(Tokenize13a("&apos;"), "& apos ;");  // not one of the four
}

TEST(Tokenize13aTest, SkippedAndLineBreaks) {
  EXPECT_EQ(Tokenize13a("auto-\nmatic <skipped>"), "automatic");
  EXPECT_EQ(Tokenize13a("two\nlines"), "two lines");
}

TEST(Tokenize13aTest, WhitespaceIsPythons) {
  EXPECT_EQ(Tokenize13a("a\u00a0b\u3000c\x1f"
                        "d\te"),
            "a b c d e");
  // A zero-width space is not whitespace to Python: one token.
  EXPECT_EQ(Tokenize13a("a\u200b"
                        "b"),
            "a\u200b"
            "b");
  EXPECT_EQ(Tokenize13a("   "), "");
}

TEST(MetricInputTest, SplitAndStripFollowPython) {
  EXPECT_EQ(SplitOnSpace("  a\u2028b\u0085 c  ").size(), 3u);
  EXPECT_EQ(StripTrailingSpace("x \u00a0\t"), "x");
  EXPECT_EQ(StripTrailingSpace("\u3000"), "");
  // Invalid UTF-8 bytes are characters of their own, not whitespace.
  EXPECT_EQ(SplitOnSpace("a\xff b").size(), 2u);
  EXPECT_EQ(CharStarts("a\xc3\xa9\xff").size(), 4u);  // a, é, 0xff, end
}

// BLEU ---------------------------------------------------------------------

TEST(BleuTest, PerfectMatchIs100) {
  // 6/6, 5/5, 4/4, 3/3 n-grams match, lengths equal: 100.
  const BleuScore s = CorpusBleu({"the cat sat on the mat"}, {{"the cat sat on the mat"}});
  EXPECT_NEAR(s.score, 100.0, 1e-9);
  EXPECT_EQ(s.matches, (std::array<int64_t, 4>{6, 5, 4, 3}));
  EXPECT_EQ(s.totals, (std::array<int64_t, 4>{6, 5, 4, 3}));
  EXPECT_DOUBLE_EQ(s.bp, 1.0);
}

TEST(BleuTest, OneSubstitutedWord) {
  // ref "the cat sat on the mat", hyp "... on a mat":
  //   1-grams the cat sat on a mat: 5 of 6 match ("a" does not)
  //   2-grams: the cat, cat sat, sat on match; on a, a mat do not: 3/5
  //   3-grams: the cat sat, cat sat on: 2/4;  4-grams: the cat sat on: 1/3
  // BLEU = (5/6 · 3/5 · 2/4 · 1/3)^(1/4) = (1/12)^(1/4) = 0.537285
  const BleuScore s = CorpusBleu({"the cat sat on a mat"}, {{"the cat sat on the mat"}});
  EXPECT_EQ(s.matches, (std::array<int64_t, 4>{5, 3, 2, 1}));
  EXPECT_EQ(s.totals, (std::array<int64_t, 4>{6, 5, 4, 3}));
  EXPECT_NEAR(s.score, 100.0 * std::pow(1.0 / 12.0, 0.25), 1e-9);
  EXPECT_NEAR(s.score, 53.7284965911771, 1e-9);
}

TEST(BleuTest, BrevityPenalty) {
  // hyp "the cat sat on" (4 tokens) is a prefix of the 6-token reference:
  // every precision is 100%, BP = exp(1 − 6/4) = exp(−0.5) = 0.606531.
  const BleuScore s = CorpusBleu({"the cat sat on"}, {{"the cat sat on the mat"}});
  EXPECT_NEAR(s.bp, std::exp(-0.5), 1e-15);
  EXPECT_NEAR(s.score, 100.0 * std::exp(-0.5), 1e-9);
  EXPECT_EQ(s.sys_len, 4);
  EXPECT_EQ(s.ref_len, 6);
  EXPECT_EQ(s.Format(),
            "BLEU = 60.65 100.0/100.0/100.0/100.0 (BP = 0.607 ratio = 0.667 hyp_len = 4 "
            "ref_len = 6)");
}

TEST(BleuTest, EmptyHypothesisIsZero) {
  // Nothing matches: score 0, and BP = 0 because the hypothesis has no token.
  const BleuScore s = CorpusBleu({""}, {{"the cat"}});
  EXPECT_EQ(s.score, 0.0);
  EXPECT_EQ(s.bp, 0.0);
  EXPECT_EQ(s.Format(),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 2)");
}

TEST(BleuTest, ExpSmoothingOfOrdersWithoutMatches) {
  // hyp "a b c d", ref "a b x d": 1-grams 3/4, 2-grams 1/3 ("a b"), 3-grams
  // 0/2 and 4-grams 0/1. exp smoothing: the first order without a match gets
  // 1/(2·2) = 25%, the second 1/(4·1) = 25%.
  // BLEU = (3/4 · 1/3 · 1/4 · 1/4)^(1/4) = (2^−6)^(1/4) = 2^−1.5 = 0.353553
  const BleuScore s = CorpusBleu({"a b c d"}, {{"a b x d"}});
  EXPECT_DOUBLE_EQ(s.precisions[2], 25.0);
  EXPECT_DOUBLE_EQ(s.precisions[3], 25.0);
  EXPECT_NEAR(s.score, 100.0 * std::pow(2.0, -1.5), 1e-9);
}

TEST(BleuTest, NoFourGramsAtAllGivesZero) {
  // Three tokens have no 4-gram: sacreBLEU stops at the empty order, leaves
  // its precision at 0, and log(0) zeroes the score (no effective order).
  const BleuScore s = CorpusBleu({"a b c"}, {{"a b c"}});
  EXPECT_EQ(s.score, 0.0);
  EXPECT_EQ(s.precisions, (std::array<double, 4>{100.0, 100.0, 100.0, 0.0}));
}

TEST(BleuTest, CountsAreClipped) {
  // hyp "the the the the", ref "the cat": "the" counts once: 1/4. Then
  // 0/3, 0/2, 0/1 smoothed to 1/(2·3), 1/(4·2), 1/(8·1).
  // BLEU = (1/4 · 1/6 · 1/8 · 1/8)^(1/4) = (1/1536)^(1/4) = 0.159736
  const BleuScore s = CorpusBleu({"the the the the"}, {{"the cat"}});
  EXPECT_EQ(s.matches[0], 1);
  EXPECT_NEAR(s.score, 100.0 * std::pow(1.0 / 1536.0, 0.25), 1e-9);
}

TEST(BleuTest, SeveralReferences) {
  // Reference lengths 3 and 5 are equally close to 4: the shorter counts.
  // Every n-gram of "a b c d" is in the second reference: 100.
  const BleuScore s = CorpusBleu({"a b c d"}, {{"a b c"}, {"a b c d e"}});
  EXPECT_EQ(s.ref_len, 3);
  EXPECT_NEAR(s.score, 100.0, 1e-9);
  // The clip is the most any one reference has: "the" twice in the second.
  const BleuScore clipped = CorpusBleu({"the the"}, {{"the cat"}, {"the the dog"}});
  EXPECT_EQ(clipped.matches[0], 2);
  EXPECT_EQ(clipped.matches[1], 1);
}

TEST(BleuTest, CorpusStatisticsAreSummedNotAveraged) {
  // Sentence 1 is perfect ("a b c d"); sentence 2 "x y" against "p q" has
  // nothing. Summed: 1-grams 4/6, 2-grams 3/4, 3-grams 2/2, 4-grams 1/1.
  // BLEU = (4/6 · 3/4 · 1 · 1)^(1/4) = 0.5^(1/4) = 0.840896 (the mean of the
  // sentence scores would be 50).
  const BleuScore s = CorpusBleu({"a b c d", "x y"}, {{"a b c d", "p q"}});
  EXPECT_NEAR(s.score, 100.0 * std::pow(0.5, 0.25), 1e-9);
}

TEST(BleuTest, TokenizationDecidesMatches) {
  // "world!" against "world !" only matches after 13a splits the "!";
  // trailing whitespace is stripped first.
  const BleuScore s = CorpusBleu({"Hello, world! \u00a0"}, {{"Hello , world !"}});
  EXPECT_NEAR(s.score, 100.0, 1e-9);
  // Case matters.
  EXPECT_LT(CorpusBleu({"hello , world !"}, {{"Hello , world !"}}).score, 100.0);
}

TEST(BleuTest, MissingReferenceLinesCountAsAbsent) {
  // The second stream lacks sentence 2; a sentence with no reference keeps
  // its n-grams (nothing to match) and adds 0 reference length.
  const BleuScore s = CorpusBleu({"a b c d", "e f"}, {{"a b c d", "e f"}, {"a b c d"}});
  EXPECT_EQ(s.ref_len, 6);
  const BleuScore none = CorpusBleu({"a b c d"}, {});
  EXPECT_EQ(none.score, 0.0);
  EXPECT_EQ(none.ref_len, 0);
  EXPECT_EQ(none.totals[0], 4);
  EXPECT_FALSE(CheckMetricInput({"a", "b"}, {{"a"}}, {"hyp.txt", "ref.txt"}).ok());
  EXPECT_TRUE(CheckMetricInput({"a"}, {{"a"}}).ok());
  EXPECT_FALSE(CheckMetricInput({"a"}, {}).ok());
}

}  // namespace
}  // namespace pipetrain
