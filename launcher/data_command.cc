#include "launcher/data_command.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/corpus_builder.h"
#include "core/data/gettext_source.h"
#include "core/data/tsv_corpus.h"
#include "core/status_macros.h"

// Hyphenated spellings (--from-gettext) work too: the command line is
// rewritten to these names before absl parses it (launcher/command_line.h).
ABSL_FLAG(std::string, from_gettext, "",
          "data build: a locale tree of gettext catalogs, e.g. /usr/share/locale");
ABSL_FLAG(std::string, from_tsv, "",
          "data build: a TSV file of src_lang, tgt_lang, src, tgt lines");
ABSL_FLAG(std::string, src, "", "data build: source sentences, one a line (with --tgt)");
ABSL_FLAG(std::string, tgt, "", "data build: their translations, line by line (with --src)");
ABSL_FLAG(std::string, src_lang, "", "data build: the language of --src, e.g. en");
ABSL_FLAG(std::string, tgt_lang, "", "data build: the language of --tgt, e.g. pt_BR");
ABSL_FLAG(std::string, out, "", "data build: the output directory");
ABSL_FLAG(int64_t, min_pairs, 1,
          "data build: drop directions with fewer distinct train pairs, and languages left "
          "with no direction");
ABSL_FLAG(double, dev_fraction, 0.01, "data build: share of pivot sentences held out for dev");
ABSL_FLAG(double, test_fraction, 0.01, "data build: share of pivot sentences held out for test");

namespace pipetrain {
namespace {

constexpr char kDataUsage[] =
    "pipetrain data build --out DIR [--from_gettext /usr/share/locale] [--from_tsv FILE]\n"
    "    [--src FILE --tgt FILE --src_lang xx --tgt_lang yy] [--min_pairs N]";

// The positional arguments among absl's argv: flags given as "--name value"
// take the next argument unless they are booleans.
std::vector<std::string> Positional(const std::vector<char*>& argv) {
  std::vector<std::string> positional;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      positional.insert(positional.end(), argv.begin() + static_cast<long>(i) + 1, argv.end());
      break;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') != std::string::npos) continue;
      const std::string name = arg.substr(arg.find_first_not_of('-'));
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      if (flag != nullptr && !flag->IsOfType<bool>()) ++i;
      continue;
    }
    positional.push_back(arg);
  }
  return positional;
}

absl::Status Build() {
  const std::string out = absl::GetFlag(FLAGS_out);
  const std::string gettext = absl::GetFlag(FLAGS_from_gettext);
  const std::string tsv = absl::GetFlag(FLAGS_from_tsv);
  const std::string src = absl::GetFlag(FLAGS_src), tgt = absl::GetFlag(FLAGS_tgt);
  const std::string src_lang = absl::GetFlag(FLAGS_src_lang);
  const std::string tgt_lang = absl::GetFlag(FLAGS_tgt_lang);
  PT_CHECK_ARG(!out.empty(), "--out DIR is required\nusage: ", kDataUsage);
  PT_CHECK_ARG(!gettext.empty() || !tsv.empty() || !src.empty() || !tgt.empty(),
               "no input: give --from_gettext, --from_tsv or --src/--tgt\nusage: ", kDataUsage);
  const bool parallel = !src.empty() || !tgt.empty() || !src_lang.empty() || !tgt_lang.empty();
  PT_CHECK_ARG(
      !parallel || (!src.empty() && !tgt.empty() && !src_lang.empty() && !tgt_lang.empty()),
      "--src, --tgt, --src_lang and --tgt_lang go together (got --src '", src, "' --tgt '", tgt,
      "' --src_lang '", src_lang, "' --tgt_lang '", tgt_lang, "')");

  const auto start = std::chrono::steady_clock::now();
  CorpusOptions options;
  options.min_pairs = absl::GetFlag(FLAGS_min_pairs);
  options.dev_fraction = absl::GetFlag(FLAGS_dev_fraction);
  options.test_fraction = absl::GetFlag(FLAGS_test_fraction);
  CorpusBuilder builder(options);
  std::vector<std::string> read;
  if (!gettext.empty()) {
    PT_ASSIGN_OR_RETURN(const GettextSummary g,
                        AddGettextTree(gettext, GettextOptions{}, &builder));
    read.push_back(absl::StrCat("locales=", g.locales, " (skipped ", g.locales_skipped,
                                ") catalogs=", g.catalogs, " (failed ", g.catalogs_failed,
                                ") translations=", g.entries, " (kept ", g.translations, ")"));
  }
  int64_t malformed = 0;
  if (!tsv.empty()) {
    PT_ASSIGN_OR_RETURN(const TsvSummary t, AddTsvFile(tsv, TsvOptions{}, &builder));
    read.push_back(absl::StrCat("tsv_lines=", t.lines, " pairs=", t.pairs,
                                " malformed=", t.malformed, " filtered=", t.filtered));
    malformed += t.malformed;
  }
  if (parallel) {
    PT_ASSIGN_OR_RETURN(const TsvSummary t,
                        AddParallelFiles(src, tgt, src_lang, tgt_lang, TsvOptions{}, &builder));
    read.push_back(absl::StrCat("parallel_lines=", t.lines, " pairs=", t.pairs,
                                " malformed=", t.malformed, " filtered=", t.filtered));
    malformed += t.malformed;
  }
  PT_ASSIGN_OR_RETURN(const CorpusSummary s, builder.Build());
  PT_RETURN_IF_ERROR(builder.Write(out));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("languages=%lld directions=%lld pairs=%lld\n", static_cast<long long>(s.languages),
              static_cast<long long>(s.directions), static_cast<long long>(s.TotalPairs()));
  std::printf("pairs: train=%lld dev=%lld test=%lld; messages: train=%lld dev=%lld test=%lld\n",
              static_cast<long long>(s.pairs[0]), static_cast<long long>(s.pairs[1]),
              static_cast<long long>(s.pairs[2]), static_cast<long long>(s.messages[0]),
              static_cast<long long>(s.messages[1]), static_cast<long long>(s.messages[2]));
  std::printf("read: %s\n", absl::StrJoin(read, "; ").c_str());
  if (malformed > 0) {
    std::printf("malformed lines skipped: %lld (file:line reported above)\n",
                static_cast<long long>(malformed));
  }
  std::printf(
      "wrote %s/{train,dev,test}.messages.tsv, directions.tsv, languages.tsv, "
      "languages.txt, stats.tsv in %.1fs\n",
      out.c_str(), seconds);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunDataCommand(const std::vector<char*>& argv) {
  const std::vector<std::string> positional = Positional(argv);
  if (positional.size() != 1 || positional[0] != "build") {
    return absl::InvalidArgumentError(absl::StrCat(
        positional.empty() ? "no action given"
                           : absl::StrCat("unknown action '", absl::StrJoin(positional, " "), "'"),
        "\nusage: ", kDataUsage));
  }
  return Build();
}

}  // namespace pipetrain
