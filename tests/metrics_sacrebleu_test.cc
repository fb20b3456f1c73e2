// pipetrain's BLEU and chrF against sacreBLEU, the reference implementation:
//  - Golden: tests/golden/metrics_cases.tsv holds real gettext sentences as
//    references, seeded system outputs of every quality and script, and the
//    scores sacreBLEU gave them (tests/golden/make_metrics_golden.py). Every
//    case must agree within 0.01 (BLEU counts and lengths exactly).
//  - Live: when `python3 -c "import sacrebleu"` works, the golden texts are
//    scored again by the installed sacreBLEU (catches a stale golden file).
//  - CLI: `pipetrain score` prints the same lines as the `sacrebleu` CLI.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/metrics/bleu.h"
#include "core/metrics/chrf.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::RunPipetrain;

constexpr double kTolerance = 0.01;  // score points on the 0..100 scale
constexpr char kGoldenPath[] = PIPETRAIN_SOURCE_DIR "/tests/golden/metrics_cases.tsv";
constexpr char kInstallHint[] =
    "sacreBLEU is not importable by python3; `python3 -m pip install sacrebleu` enables this "
    "check (the golden-file comparison runs without it)";

struct GoldenCase {
  std::string name;
  std::vector<std::string> hyps;
  std::vector<std::vector<std::string>> refs;  // refs[k][i]
  double bleu = 0, chrf = 0, chrfpp = 0, chrf_eps = 0;
  std::array<int64_t, 4> matches{}, totals{};
  int64_t sys_len = 0, ref_len = 0;
};

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    *out += static_cast<char>(c);
  } else if (c < 0x800) {
    *out += static_cast<char>(0xC0 | (c >> 6));
    *out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    *out += static_cast<char>(0xE0 | (c >> 12));
    *out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// The escapes of make_metrics_golden.py: \\ \t \n \r \uHHHH.
std::string Unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    const char kind = text[++i];
    if (kind == 'u') {
      AppendUtf8(static_cast<char32_t>(std::stoul(std::string(text.substr(i + 1, 4)), nullptr, 16)),
                 &out);
      i += 4;
    } else {
      out += kind == 't' ? '\t' : kind == 'n' ? '\n' : kind == 'r' ? '\r' : kind;
    }
  }
  return out;
}

struct Golden {
  std::string sacrebleu_version;
  std::vector<GoldenCase> cases;
};

Golden ReadGolden() {
  Golden golden;
  std::ifstream in(kGoldenPath, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << kGoldenPath;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> f = absl::StrSplit(line, '\t');
    const std::string where = absl::StrCat(kGoldenPath, ":", line_number);
    if (f[0] == "sacrebleu") {
      golden.sacrebleu_version = f.at(1);
    } else if (f[0] == "case") {
      GoldenCase c;
      c.name = f.at(1);
      c.refs.resize(std::stoul(f.at(3)));
      golden.cases.push_back(std::move(c));
    } else if (f[0] == "s") {
      GoldenCase& c = golden.cases.back();
      EXPECT_EQ(f.size(), c.refs.size() + 2) << where;
      c.hyps.push_back(Unescape(f.at(1)));
      for (size_t k = 0; k < c.refs.size(); ++k) c.refs[k].push_back(Unescape(f.at(k + 2)));
    } else if (f[0] == "bleu") {
      GoldenCase& c = golden.cases.back();
      EXPECT_EQ(f.size(), 12u) << where;
      c.bleu = std::strtod(f.at(1).c_str(), nullptr);
      for (int n = 0; n < 4; ++n) {
        c.matches[n] = std::stoll(f.at(2 + n));
        c.totals[n] = std::stoll(f.at(6 + n));
      }
      c.sys_len = std::stoll(f.at(10));
      c.ref_len = std::stoll(f.at(11));
    } else if (f[0] == "chrf") {
      golden.cases.back().chrf = std::strtod(f.at(1).c_str(), nullptr);
    } else if (f[0] == "chrfpp") {
      golden.cases.back().chrfpp = std::strtod(f.at(1).c_str(), nullptr);
    } else if (f[0] == "chrf_eps") {
      golden.cases.back().chrf_eps = std::strtod(f.at(1).c_str(), nullptr);
    }
  }
  return golden;
}

struct Computed {
  BleuScore bleu;
  double chrf, chrfpp, chrf_eps;
};

Computed Compute(const GoldenCase& c) {
  ChrfOptions eps;
  eps.eps_smoothing = true;
  return {CorpusBleu(c.hyps, c.refs), CorpusChrf(c.hyps, c.refs).score,
          CorpusChrf(c.hyps, c.refs, 2).score, CorpusChrf(c.hyps, c.refs, eps).score};
}

// One row of the difference table.
struct Row {
  std::string name;
  double bleu_diff, chrf_diff, chrfpp_diff, chrf_eps_diff;
  double Worst() const { return std::max({bleu_diff, chrf_diff, chrfpp_diff, chrf_eps_diff}); }
};

// Prints the rows, worst first, and returns the largest difference.
double PrintTable(const std::string& title, std::vector<Row> rows, size_t shown = 12) {
  std::sort(rows.begin(), rows.end(),
            [](const Row& a, const Row& b) { return a.Worst() > b.Worst(); });
  std::printf("%s (%zu cases, worst first)\n  %-36s %10s %10s %10s %10s\n", title.c_str(),
              rows.size(), "case", "|dBLEU|", "|dchrF|", "|dchrF++|", "|dchrFeps|");
  for (size_t i = 0; i < rows.size() && i < shown; ++i) {
    std::printf("  %-36s %10.3g %10.3g %10.3g %10.3g\n", rows[i].name.c_str(), rows[i].bleu_diff,
                rows[i].chrf_diff, rows[i].chrfpp_diff, rows[i].chrf_eps_diff);
  }
  return rows.empty() ? 0.0 : rows.front().Worst();
}

TEST(MetricsSacreBleuTest, GoldenCasesAgree) {
  const Golden golden = ReadGolden();
  ASSERT_GE(golden.cases.size(), 24u);
  EXPECT_FALSE(golden.sacrebleu_version.empty());
  std::vector<Row> rows;
  size_t sentences = 0;
  for (const GoldenCase& c : golden.cases) {
    SCOPED_TRACE(c.name);
    sentences += c.hyps.size();
    const Computed got = Compute(c);
    // The sufficient statistics are integers: they must be equal.
    EXPECT_EQ(got.bleu.matches, c.matches);
    EXPECT_EQ(got.bleu.totals, c.totals);
    EXPECT_EQ(got.bleu.sys_len, c.sys_len);
    EXPECT_EQ(got.bleu.ref_len, c.ref_len);
    rows.push_back({c.name, std::abs(got.bleu.score - c.bleu), std::abs(got.chrf - c.chrf),
                    std::abs(got.chrfpp - c.chrfpp), std::abs(got.chrf_eps - c.chrf_eps)});
    EXPECT_LE(rows.back().Worst(), kTolerance)
        << "BLEU " << got.bleu.score << " vs " << c.bleu << ", chrF " << got.chrf << " vs "
        << c.chrf << ", chrF++ " << got.chrfpp << " vs " << c.chrfpp << ", chrF eps "
        << got.chrf_eps << " vs " << c.chrf_eps;
  }
  const double worst = PrintTable(absl::StrCat("pipetrain - sacreBLEU ", golden.sacrebleu_version,
                                               " (golden file, ", sentences, " sentences)"),
                                  rows);
  std::printf("max |difference| = %.3g score points\n", worst);
  ::testing::Test::RecordProperty("max_abs_diff_golden", absl::StrCat(worst));
}

bool SacreBleuImports() { return RunCommand("python3 -c 'import sacrebleu'").exit_code == 0; }

TEST(MetricsSacreBleuTest, LiveSacreBleuAgrees) {
  if (!SacreBleuImports()) GTEST_SKIP() << kInstallHint;
  const Golden golden = ReadGolden();
  const testing::RunResult run = RunCommand(
      "python3 tests/golden/make_metrics_golden.py --rescore tests/golden/metrics_cases.tsv");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::map<std::string, std::vector<double>> live;
  std::string version;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(run.output, '\n'))) {
    const std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f[0] == "sacrebleu" && f.size() == 2) version = f[1];
    if (f[0] != "score" || f.size() != 6) continue;
    for (size_t i = 2; i < 6; ++i) live[f[1]].push_back(std::strtod(f[i].c_str(), nullptr));
  }
  ASSERT_EQ(live.size(), golden.cases.size()) << run.output;
  std::vector<Row> vs_golden, vs_pipetrain;
  for (const GoldenCase& c : golden.cases) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(live.count(c.name), 1u);
    const std::vector<double>& s = live[c.name];
    vs_golden.push_back({c.name, std::abs(s[0] - c.bleu), std::abs(s[1] - c.chrf),
                         std::abs(s[2] - c.chrfpp), std::abs(s[3] - c.chrf_eps)});
    EXPECT_LE(vs_golden.back().Worst(), kTolerance)
        << "the installed sacreBLEU " << version << " disagrees with the golden file (made with "
        << golden.sacrebleu_version
        << "): regenerate it with tests/golden/make_metrics_golden.py, or find what changed";
    const Computed got = Compute(c);
    vs_pipetrain.push_back({c.name, std::abs(s[0] - got.bleu.score), std::abs(s[1] - got.chrf),
                            std::abs(s[2] - got.chrfpp), std::abs(s[3] - got.chrf_eps)});
    EXPECT_LE(vs_pipetrain.back().Worst(), kTolerance);
  }
  PrintTable(absl::StrCat("installed sacreBLEU ", version, " - golden"), vs_golden, 3);
  const double worst =
      PrintTable(absl::StrCat("pipetrain - installed sacreBLEU ", version), vs_pipetrain, 5);
  ::testing::Test::RecordProperty("max_abs_diff_live", absl::StrCat(worst));
}

// --- pipetrain score ----------------------------------------------------------

class ScoreCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("metrics_sacrebleu_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes one line per text; line breaks inside a text become spaces, since
  // every line of a file is one sentence.
  std::string Write(const std::string& name, const std::vector<std::string>& lines) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    for (std::string line : lines) {
      std::replace(line.begin(), line.end(), '\n', ' ');
      std::replace(line.begin(), line.end(), '\r', ' ');
      out << line << '\n';
    }
    return path;
  }

  fs::path dir_;
};

// The text after " = " of the first output line that starts with `name`
// followed by " " or "|" (sacreBLEU puts its signature after a "|").
std::string ScoreText(const std::string& output, const std::string& name) {
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(output, '\n'))) {
    // sacreBLEU's text format indents some lines to align them.
    const std::string trimmed = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    if (trimmed.rfind(name + " ", 0) != 0 && trimmed.rfind(name + "|", 0) != 0) continue;
    const size_t at = trimmed.find(" = ");
    if (at != std::string::npos) return trimmed.substr(at + 3);
  }
  return "";
}

TEST_F(ScoreCommandTest, PrintsBleuChrfAndJson) {
  const std::string hyp = Write("hyp.txt", {"the cat sat on a mat", "Hello, world!"});
  const std::string ref = Write("ref.txt", {"the cat sat on the mat", "Hello , world !"});
  const testing::RunResult run = RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("BLEU = "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("(BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("chrF2 = "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("chrF2++ = "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("{\"hyp\": \"" + hyp + "\", \"refs\": [\"" + ref +
                            "\"], \"sentences\": 2, \"bleu\": "),
            std::string::npos)
      << run.output;
}

TEST_F(ScoreCommandTest, RepeatedAndCommaSeparatedReferencesAgree) {
  const std::string hyp = Write("hyp.txt", {"a b c d e", "f g h i"});
  const std::string ref1 = Write("ref1.txt", {"a b c x e", "f g h i"});
  const std::string ref2 = Write("ref2.txt", {"a b c d", "f x h i"});
  const testing::RunResult repeated =
      RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref1, " --ref=", ref2));
  const testing::RunResult comma =
      RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref1, ",", ref2));
  const testing::RunResult one = RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref1));
  ASSERT_EQ(repeated.exit_code, 0) << repeated.output;
  EXPECT_EQ(repeated.output, comma.output);
  EXPECT_NE(ScoreText(repeated.output, "BLEU"), ScoreText(one.output, "BLEU"));
}

TEST_F(ScoreCommandTest, LineCountMismatchNamesBothFiles) {
  const std::string hyp = Write("hyp.txt", {"a", "b", "c"});
  const std::string ref = Write("ref.txt", {"a", "b"});
  const testing::RunResult run = RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find(hyp + " has 3 lines but " + ref + " has 2 lines"), std::string::npos)
      << run.output;
}

TEST_F(ScoreCommandTest, BadInputIsAnError) {
  const std::string hyp = Write("hyp.txt", {"a", "b\xff"});
  const std::string ref = Write("ref.txt", {"a", "b"});
  testing::RunResult run = RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find(hyp + ":2: not valid UTF-8"), std::string::npos) << run.output;
  run = RunPipetrain(absl::StrCat("score --hyp ", ref, " --ref ", (dir_ / "missing.txt").string()));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("cannot open"), std::string::npos) << run.output;
  run = RunPipetrain(absl::StrCat("score --hyp ", hyp));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("--ref FILE is required"), std::string::npos) << run.output;
}

TEST_F(ScoreCommandTest, ReadsLinesLikePython) {
  // "\r\n" and a lone "\r" end lines (universal newlines); trailing
  // whitespace goes; a last line without "\n" counts; U+2028 does not split.
  const std::string hyp = (dir_ / "hyp.txt").string();
  std::ofstream(hyp, std::ios::binary) << "a b\r\nc d \u00a0\re\u2028f";
  const std::string ref = Write("ref.txt", {"a b", "c d", "e\u2028f"});
  const testing::RunResult run = RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(ScoreText(run.output, "chrF2"), "100.00") << run.output;
}

TEST_F(ScoreCommandTest, SameLinesAsTheSacreBleuCli) {
  if (RunCommand("sacrebleu --version").exit_code != 0 || !SacreBleuImports()) {
    GTEST_SKIP() << "no `sacrebleu` command: " << kInstallHint;
  }
  const Golden golden = ReadGolden();
  int compared = 0;
  for (const GoldenCase& c : golden.cases) {
    // A few cases with what could go wrong between two readers of a file:
    // several references, odd whitespace (U+2028, U+0085, \v...), empty lines.
    static const char* const kNames[] = {"es_hyp_vs_pt_and_pt_BR_refs", "ru_odd_whitespace",
                                         "zh_CN_empty_lines", "de_three_refs_perturbed"};
    if (std::find(std::begin(kNames), std::end(kNames), c.name) == std::end(kNames)) continue;
    SCOPED_TRACE(c.name);
    const std::string hyp = Write(c.name + ".hyp", c.hyps);
    std::string refs, ref_list;
    for (size_t k = 0; k < c.refs.size(); ++k) {
      const std::string path = Write(absl::StrCat(c.name, ".ref", k), c.refs[k]);
      absl::StrAppend(&refs, " ", path);
      absl::StrAppend(&ref_list, k ? "," : "", path);
    }
    const testing::RunResult ours =
        RunPipetrain(absl::StrCat("score --hyp ", hyp, " --ref ", ref_list));
    ASSERT_EQ(ours.exit_code, 0) << ours.output;
    const testing::RunResult theirs =
        RunCommand(absl::StrCat("sacrebleu", refs, " -i ", hyp, " -m bleu chrf -f text -w 2"));
    ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
    const testing::RunResult theirs_pp = RunCommand(
        absl::StrCat("sacrebleu", refs, " -i ", hyp, " -m chrf --chrf-word-order 2 -f text -w 2"));
    ASSERT_EQ(theirs_pp.exit_code, 0) << theirs_pp.output;
    // Identical text: score, precisions, BP, ratio and lengths as printed.
    EXPECT_EQ(ScoreText(ours.output, "BLEU"), ScoreText(theirs.output, "BLEU")) << theirs.output;
    EXPECT_FALSE(ScoreText(ours.output, "BLEU").empty());
    EXPECT_EQ(ScoreText(ours.output, "chrF2"), ScoreText(theirs.output, "chrF2")) << theirs.output;
    EXPECT_EQ(ScoreText(ours.output, "chrF2++"), ScoreText(theirs_pp.output, "chrF2++"))
        << theirs_pp.output;
    ++compared;
  }
  EXPECT_EQ(compared, 4);
}

}  // namespace
}  // namespace pipetrain
