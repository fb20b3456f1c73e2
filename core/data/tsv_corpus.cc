#include "core/data/tsv_corpus.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/data/language_codes.h"
#include "core/util/log.h"

namespace pipetrain {
namespace {

constexpr std::string_view kHeader = "src_lang\ttgt_lang\tsrc\ttgt";

absl::StatusOr<std::ifstream> Open(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  return in;
}

// Reads a line without its "\n" or "\r\n".
bool ReadLine(std::istream& in, std::string* line) {
  if (!std::getline(in, *line)) return false;
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return true;
}

// Reports and counts malformed lines of one file.
class Malformed {
 public:
  Malformed(std::string path, const TsvOptions& options, CorpusBuilder* builder,
            TsvSummary* summary)
      : path_(std::move(path)), options_(options), builder_(builder), summary_(summary) {}
  ~Malformed() {
    if (reported_ < total_) {
      LogWarning("data", "%s: %d more malformed lines not shown", path_, total_ - reported_);
    }
  }

  void Report(int64_t line, std::string_view reason, const std::string& why) {
    builder_->Count(absl::StrCat("malformed.", std::string(reason)));
    ++summary_->malformed;
    if (++total_ > options_.max_reported) return;
    ++reported_;
    LogWarning("data", "%s:%d: %s; line skipped", path_, line, why);
  }

 private:
  std::string path_;
  const TsvOptions& options_;
  CorpusBuilder* builder_;
  TsvSummary* summary_;
  int64_t total_ = 0, reported_ = 0;
};

// Language codes of a file, normalised once each.
class LanguageCache {
 public:
  explicit LanguageCache(CorpusBuilder* builder, std::string source)
      : builder_(builder), source_(std::move(source)) {}

  absl::StatusOr<CorpusBuilder::LangId> Get(std::string_view name) {
    auto it = cache_.find(std::string(name));
    if (it == cache_.end()) {
      auto code = NormalizeLanguageCode(name);
      absl::StatusOr<CorpusBuilder::LangId> id;
      if (code.ok()) {
        id = builder_->Language(code->code);
        builder_->NoteSource(*id, source_);
      } else {
        id = code.status();
      }
      it = cache_.emplace(std::string(name), id).first;
    }
    return it->second;
  }

 private:
  CorpusBuilder* builder_;
  std::string source_;
  std::unordered_map<std::string, absl::StatusOr<CorpusBuilder::LangId>> cache_;
};

// Filters and adds one well-formed pair.
void AddPair(CorpusBuilder::LangId src_lang, std::string_view src, CorpusBuilder::LangId tgt_lang,
             std::string_view tgt, const TsvOptions& options, CorpusBuilder* builder,
             TsvSummary* summary) {
  src = TrimText(src);
  tgt = TrimText(tgt);
  for (std::string_view text : {src, tgt}) {
    if (const TextIssue issue = CheckText(text, options.filters); issue != TextIssue::kNone) {
      builder->Count(absl::StrCat("tsv.", IssueName(issue)));
      ++summary->filtered;
      return;
    }
  }
  if (const PairIssue issue = CheckPair(src, tgt, options.filters); issue != PairIssue::kNone) {
    builder->Count(absl::StrCat("tsv.", IssueName(issue)));
    ++summary->filtered;
    return;
  }
  const uint32_t message = builder->AddMessage(src_lang, src);
  if (message != CorpusBuilder::kNoMessage && builder->AddTranslation(message, tgt_lang, 0, tgt)) {
    ++summary->pairs;
  }
}

void CountSummary(const TsvSummary& s, CorpusBuilder* builder) {
  builder->Count("read.tsv_lines", s.lines);
  builder->Count("read.tsv_pairs", s.pairs);
  builder->Count("read.tsv_malformed", s.malformed);
  builder->Count("read.tsv_filtered", s.filtered);
}

}  // namespace

absl::StatusOr<TsvSummary> AddTsvFile(const std::string& path, const TsvOptions& options,
                                      CorpusBuilder* builder) {
  auto in = Open(path);
  if (!in.ok()) return in.status();
  TsvSummary summary;
  Malformed malformed(path, options, builder, &summary);
  LanguageCache languages(builder, path);
  std::string line;
  std::vector<std::string_view> fields;
  for (int64_t number = 1; ReadLine(*in, &line); ++number) {
    if (number == 1 && line == kHeader) continue;
    ++summary.lines;
    if (!IsValidUtf8(line)) {
      malformed.Report(number, "bad_utf8", "not valid UTF-8");
      continue;
    }
    fields.clear();
    for (size_t start = 0;;) {
      const size_t tab = line.find('\t', start);
      fields.push_back(std::string_view(line).substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (fields.size() != 4) {
      malformed.Report(number, "columns",
                       absl::StrCat(fields.size(), " tab-separated columns, expected 4 ",
                                    "(src_lang, tgt_lang, src, tgt)"));
      continue;
    }
    auto src_lang = languages.Get(fields[0]);
    auto tgt_lang = languages.Get(fields[1]);
    if (!src_lang.ok() || !tgt_lang.ok()) {
      malformed.Report(number, "language_code",
                       std::string((src_lang.ok() ? tgt_lang : src_lang).status().message()));
      continue;
    }
    if (*src_lang == *tgt_lang) {
      malformed.Report(number, "same_language",
                       absl::StrCat("both sides are ", builder->LanguageName(*src_lang)));
      continue;
    }
    AddPair(*src_lang, fields[2], *tgt_lang, fields[3], options, builder, &summary);
  }
  if (in->bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  CountSummary(summary, builder);
  return summary;
}

absl::StatusOr<TsvSummary> AddParallelFiles(const std::string& src_path,
                                            const std::string& tgt_path,
                                            const std::string& src_lang,
                                            const std::string& tgt_lang, const TsvOptions& options,
                                            CorpusBuilder* builder) {
  auto src_code = NormalizeLanguageCode(src_lang);
  if (!src_code.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--src_lang: ", std::string(src_code.status().message())));
  }
  auto tgt_code = NormalizeLanguageCode(tgt_lang);
  if (!tgt_code.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tgt_lang: ", std::string(tgt_code.status().message())));
  }
  if (src_code->code == tgt_code->code) {
    return absl::InvalidArgumentError(absl::StrCat("--src_lang ", src_lang, " and --tgt_lang ",
                                                   tgt_lang, " are the same language (",
                                                   src_code->code, ")"));
  }
  auto src_in = Open(src_path);
  if (!src_in.ok()) return src_in.status();
  auto tgt_in = Open(tgt_path);
  if (!tgt_in.ok()) return tgt_in.status();
  const CorpusBuilder::LangId src_id = builder->Language(src_code->code);
  const CorpusBuilder::LangId tgt_id = builder->Language(tgt_code->code);
  builder->NoteSource(src_id, src_path);
  builder->NoteSource(tgt_id, tgt_path);

  TsvSummary summary;
  Malformed src_malformed(src_path, options, builder, &summary);
  Malformed tgt_malformed(tgt_path, options, builder, &summary);
  std::string src, tgt;
  int64_t number = 0;
  for (;;) {
    const bool has_src = ReadLine(*src_in, &src);
    const bool has_tgt = ReadLine(*tgt_in, &tgt);
    if (!has_src && !has_tgt) break;
    ++number;
    ++summary.lines;
    if (has_src != has_tgt) {
      (has_src ? src_malformed : tgt_malformed)
          .Report(number, "line_count_mismatch",
                  absl::StrCat("no line ", number, " in ", has_src ? tgt_path : src_path,
                               ": the files must have the same number of lines"));
      continue;
    }
    if (!IsValidUtf8(src)) {
      src_malformed.Report(number, "bad_utf8", "not valid UTF-8");
      continue;
    }
    if (!IsValidUtf8(tgt)) {
      tgt_malformed.Report(number, "bad_utf8", "not valid UTF-8");
      continue;
    }
    AddPair(src_id, src, tgt_id, tgt, options, builder, &summary);
  }
  if (src_in->bad() || tgt_in->bad()) {
    return absl::DataLossError(absl::StrCat("read error in ", src_path, " or ", tgt_path));
  }
  CountSummary(summary, builder);
  return summary;
}

}  // namespace pipetrain
