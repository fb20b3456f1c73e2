#include "launcher/data_command.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/data/corpus_builder.h"
#include "core/data/gettext_source.h"
#include "core/data/sentencepiece_model.h"
#include "core/data/token_shard_writer.h"
#include "core/data/token_shards.h"
#include "core/data/tsv_corpus.h"
#include "core/data/vocab_builder.h"
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
ABSL_FLAG(std::string, out, "",
          "data build: the output directory; data vocab, data shard: where to write (default: "
          "the corpus directory); ckpt export: the .safetensors file");
ABSL_FLAG(int64_t, min_pairs, 1,
          "data build: drop directions with fewer distinct train pairs, and languages left "
          "with no direction");
ABSL_FLAG(double, dev_fraction, 0.01, "data build: share of pivot sentences held out for dev");
ABSL_FLAG(double, test_fraction, 0.01, "data build: share of pivot sentences held out for test");
ABSL_FLAG(std::string, corpus, "", "data vocab: a corpus directory written by data build");
ABSL_FLAG(int32_t, vocab_size, 8000, "data vocab: pieces in the SentencePiece vocabulary");
ABSL_FLAG(double, temperature, 5.0,
          "data vocab: language sampling temperature, p ~ n^(1/T) (1: as in the data)");
ABSL_FLAG(int64_t, vocab_sentences, 300000, "data vocab: train sentences sampled for spm_train");
ABSL_FLAG(std::string, vocab, "",
          "data shard: the SentencePiece model to encode with (default CORPUS/spm.model)");
ABSL_FLAG(std::string, languages, "",
          "data vocab, data shard: languages to keep, comma-separated as in languages.txt "
          "(empty: all)");
// --seed (train_command.cc): the vocabulary sample's seed too.
ABSL_DECLARE_FLAG(int64_t, seed);

namespace pipetrain {
namespace {

constexpr char kDataUsage[] =
    "pipetrain data build --out DIR [--from_gettext /usr/share/locale] [--from_tsv FILE]\n"
    "    [--src FILE --tgt FILE --src_lang xx --tgt_lang yy] [--min_pairs N]\n"
    "pipetrain data vocab --corpus DIR [--vocab_size 8000] [--temperature 5]\n"
    "    [--vocab_sentences 300000] [--seed N] [--languages en,de,...] [--out DIR]\n"
    "pipetrain data shard --corpus DIR [--vocab DIR/spm.model] [--languages en,de,...]\n"
    "    [--out DIR/shards]";

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

// The shape of a TSV line, for messages about a file with none usable.
constexpr char kTsvShape[] =
    "expected UTF-8 lines \"src_lang<TAB>tgt_lang<TAB>source<TAB>target\" with language codes "
    "such as en or pt_BR";

// An input file must be a regular file: a FIFO would block the read until
// someone writes to it, and a device such as /dev/zero would be read without
// end.
absl::Status CheckInputFile(const char* flag, const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (error || !std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(flag, ": cannot open ", path, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " ", path, " is not a regular file (",
        std::filesystem::is_directory(status) ? "a directory" : "a FIFO, socket or device",
        "); pass the file itself"));
  }
  return absl::OkStatus();
}

// A text input that gave no pair: say why, from its counters.
absl::Status NoPairsFrom(const std::string& input, const TsvSummary& t) {
  if (t.lines == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(input, " is empty: no sentence pair to build a corpus from; ", kTsvShape));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      input, " gave no sentence pair: of its ", t.lines, " lines ", t.malformed,
      " are malformed (the first are listed above with file:line) and ", t.filtered,
      " were dropped by the text filters (empty, too long, or not text); ", kTsvShape));
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
    if (g.catalogs == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--from_gettext ", gettext, ": none of its ", g.catalogs_failed,
          " catalogs could be read (each is named above: unreadable, not a .mo file, or in an "
          "unknown charset); point --from_gettext at a locale tree such as /usr/share/locale"));
    }
    if (g.translations == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--from_gettext ", gettext, ": its ", g.catalogs, " catalogs in ", g.locales,
          " locales (", g.locales_skipped,
          " skipped: not a language code, or English) hold no usable translation; point "
          "--from_gettext at a locale tree with translated catalogs, such as /usr/share/locale"));
    }
    read.push_back(absl::StrCat("locales=", g.locales, " (skipped ", g.locales_skipped,
                                ") catalogs=", g.catalogs, " (failed ", g.catalogs_failed,
                                ") translations=", g.entries, " (kept ", g.translations, ")"));
  }
  int64_t malformed = 0;
  if (!tsv.empty()) {
    PT_RETURN_IF_ERROR(CheckInputFile("--from_tsv", tsv));
    absl::StatusOr<TsvSummary> read_tsv = AddTsvFile(tsv, TsvOptions{}, &builder);
    if (!read_tsv.ok()) {
      return absl::Status(read_tsv.status().code(),
                          absl::StrCat("--from_tsv ", tsv, ": ", read_tsv.status().message()));
    }
    const TsvSummary& t = *read_tsv;
    if (t.pairs == 0) return NoPairsFrom(absl::StrCat("--from_tsv ", tsv), t);
    read.push_back(absl::StrCat("tsv_lines=", t.lines, " pairs=", t.pairs,
                                " malformed=", t.malformed, " filtered=", t.filtered));
    malformed += t.malformed;
  }
  if (parallel) {
    PT_RETURN_IF_ERROR(CheckInputFile("--src", src));
    PT_RETURN_IF_ERROR(CheckInputFile("--tgt", tgt));
    PT_ASSIGN_OR_RETURN(const TsvSummary t,
                        AddParallelFiles(src, tgt, src_lang, tgt_lang, TsvOptions{}, &builder));
    if (t.pairs == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--src ", src, " and --tgt ", tgt, " gave no sentence pair: of their ", t.lines,
          " lines ", t.malformed, " are malformed (listed above) and ", t.filtered,
          " were dropped by the text filters; expected one UTF-8 sentence a line, line i of "
          "--tgt translating line i of --src"));
    }
    read.push_back(absl::StrCat("parallel_lines=", t.lines, " pairs=", t.pairs,
                                " malformed=", t.malformed, " filtered=", t.filtered));
    malformed += t.malformed;
  }
  PT_ASSIGN_OR_RETURN(const CorpusSummary s, builder.Build());
  // Nothing is written for a corpus without a direction: `data vocab` and
  // training would only fail later, further from the cause.
  if (s.directions == 0 || s.pairs[0] == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no direction has --min_pairs=", options.min_pairs,
        " distinct train pairs, so the corpus would be empty (read: ", absl::StrJoin(read, "; "),
        "); nothing was written to ", out, ". Lower --min_pairs or give more data"));
  }
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

// `data vocab`: prints what was sampled, the vocabulary and the time taken.
absl::Status Vocab() {
  VocabOptions options;
  options.vocab_size = absl::GetFlag(FLAGS_vocab_size);
  options.temperature = absl::GetFlag(FLAGS_temperature);
  options.max_sentences = absl::GetFlag(FLAGS_vocab_sentences);
  for (absl::string_view code :
       absl::StrSplit(absl::GetFlag(FLAGS_languages), ',', absl::SkipWhitespace())) {
    options.languages.emplace_back(absl::StripAsciiWhitespace(code));
  }
  options.out_dir = absl::GetFlag(FLAGS_out);
  const int64_t seed = absl::GetFlag(FLAGS_seed);
  options.seed = seed < 0 ? 1 : static_cast<uint64_t>(seed);
  PT_ASSIGN_OR_RETURN(const VocabSummary s, BuildVocabulary(absl::GetFlag(FLAGS_corpus), options));
  std::vector<std::string> top;
  for (size_t i = 0; i < s.per_language.size() && i < 5; ++i) {
    top.push_back(absl::StrCat(s.per_language[i].language, " ", s.per_language[i].sampled, "/",
                               s.per_language[i].available));
  }
  std::printf(
      "sample: %lld sentences of %lld languages (%lld distinct train sentences), "
      "temperature %g, seed %llu; most sampled: %s\n",
      static_cast<long long>(s.sampled_sentences), static_cast<long long>(s.languages),
      static_cast<long long>(s.distinct_sentences), options.temperature,
      static_cast<unsigned long long>(options.seed), absl::StrJoin(top, ", ").c_str());
  std::printf("vocab_size=%d (unigram, byte fallback, %lld language tags)\n", s.vocab_size,
              static_cast<long long>(s.language_tags));
  std::printf("wrote %s, %s (spm_train log: %s) in %.1fs (sampling %.1fs, spm_train %.1fs)\n",
              s.model_path.c_str(), s.vocab_path.c_str(), s.log_path.c_str(), s.total_seconds,
              s.read_seconds, s.train_seconds);
  return absl::OkStatus();
}

// `data shard`: the corpus encoded once with its vocabulary, as binary
// shards the trainer memory-maps (core/data/token_shards.h).
absl::Status Shard() {
  const std::string corpus = absl::GetFlag(FLAGS_corpus);
  PT_CHECK_ARG(!corpus.empty(), "--corpus DIR is required\nusage: ", kDataUsage);
  std::string vocab_path = absl::GetFlag(FLAGS_vocab);
  if (vocab_path.empty()) vocab_path = corpus + "/spm.model";
  std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) out = corpus + "/shards";
  absl::StatusOr<SentencePieceModel> model = SentencePieceModel::Load(vocab_path);
  if (!model.ok()) {
    return absl::Status(model.status().code(), absl::StrCat(model.status().message(),
                                                            " (make the vocabulary with "
                                                            "`pipetrain data vocab --corpus ",
                                                            corpus, "`)"));
  }
  ShardVocabulary vocab;
  vocab.path = vocab_path;
  PT_ASSIGN_OR_RETURN(vocab.hash, HashFileContents(vocab_path));
  vocab.vocab_size = model->vocab_size();
  // Encode is const and keeps no state, so the writer's threads share it.
  vocab.encode = [&model](const std::string& text) { return model->Encode(text); };
  vocab.language_tag_id = [&model](const std::string& code) {
    return model->PieceToId(LanguageTagPiece(code));
  };
  ShardOptions options;
  for (absl::string_view code :
       absl::StrSplit(absl::GetFlag(FLAGS_languages), ',', absl::SkipWhitespace())) {
    options.languages.emplace_back(absl::StripAsciiWhitespace(code));
  }
  PT_ASSIGN_OR_RETURN(const ShardSummary s, WriteCorpusShards(corpus, vocab, options, out));
  if (!s.dropped_languages.empty()) {
    std::fprintf(stderr,
                 "[data] no direction joins these to the other languages; not sharded: %s\n",
                 absl::StrJoin(s.dropped_languages, " ").c_str());
  }
  auto ll = [](int64_t v) { return static_cast<long long>(v); };
  std::printf("languages=%lld directions=%lld pairs: train=%lld dev=%lld test=%lld\n",
              ll(s.languages), ll(s.directions), ll(s.pairs[0]), ll(s.pairs[1]), ll(s.pairs[2]));
  std::printf("sentences: train=%lld dev=%lld test=%lld; tokens: train=%lld dev=%lld test=%lld\n",
              ll(s.sentences[0]), ll(s.sentences[1]), ll(s.sentences[2]), ll(s.tokens[0]),
              ll(s.tokens[1]), ll(s.tokens[2]));
  std::printf(
      "wrote %s/{train,dev,test}.{tokens,pairs}, manifest.tsv: %.1f MB in %.1fs "
      "(vocabulary %s, %d pieces)\n",
      out.c_str(), static_cast<double>(s.bytes) / 1e6, s.seconds, vocab_path.c_str(),
      vocab.vocab_size);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunDataCommand(const std::vector<char*>& argv) {
  const std::vector<std::string> positional = Positional(argv);
  if (positional.size() == 1 && positional[0] == "vocab") return Vocab();
  if (positional.size() == 1 && positional[0] == "shard") return Shard();
  if (positional.size() != 1 || positional[0] != "build") {
    return absl::InvalidArgumentError(absl::StrCat(
        positional.empty() ? "no action given"
                           : absl::StrCat("unknown action '", absl::StrJoin(positional, " "), "'"),
        "\nusage: ", kDataUsage));
  }
  return Build();
}

}  // namespace pipetrain
