#include "launcher/score_command.h"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/data/text_filters.h"
#include "core/metrics/bleu.h"
#include "core/metrics/chrf.h"
#include "core/metrics/metric_input.h"
#include "core/status_macros.h"

ABSL_FLAG(std::string, hyp, "", "score: the system output, one sentence a line");
ABSL_FLAG(std::string, ref, "",
          "score: reference file(s), line-aligned with --hyp; repeat --ref or separate "
          "files with commas for several references");

namespace pipetrain {
namespace {

constexpr char kScoreUsage[] = "pipetrain score --hyp FILE --ref FILE [--ref FILE2 | --ref A,B]";

// Every --ref value on the command line, in order (absl only keeps the last).
std::vector<std::string> ReferencePaths(const std::vector<char*>& argv) {
  std::vector<std::string> values;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if ((arg == "--ref" || arg == "-ref") && i + 1 < argv.size()) {
      values.emplace_back(argv[++i]);
    } else if (arg.rfind("--ref=", 0) == 0 || arg.rfind("-ref=", 0) == 0) {
      values.emplace_back(arg.substr(arg.find('=') + 1));
    }
  }
  std::vector<std::string> paths;
  for (const std::string& value : values) {
    std::error_code error;
    if (std::filesystem::exists(value, error)) {
      paths.push_back(value);
      continue;
    }
    const std::vector<std::string> pieces = absl::StrSplit(value, ',', absl::SkipEmpty());
    paths.insert(paths.end(), pieces.begin(), pieces.end());
  }
  return paths;
}

// Shortest text that reads back as the same double.
std::string Number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadScoreLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t pos = 0; pos <= text.size(); ++pos) {
    const bool at_end = pos == text.size();
    if (!at_end && text[pos] != '\n' && text[pos] != '\r') continue;
    if (at_end && pos == start) break;  // no line after the last line break
    const std::string_view line = std::string_view(text).substr(start, pos - start);
    if (!IsValidUtf8(line)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", lines.size() + 1, ": not valid UTF-8; convert the file (e.g. iconv)"));
    }
    lines.emplace_back(StripTrailingSpace(line));
    if (!at_end && text[pos] == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ++pos;
    start = pos + 1;
  }
  return lines;
}

absl::Status RunScoreCommand(const std::vector<char*>& argv) {
  const std::string hyp_path = absl::GetFlag(FLAGS_hyp);
  const std::vector<std::string> ref_paths = ReferencePaths(argv);
  PT_CHECK_ARG(!hyp_path.empty(), "--hyp FILE is required\nusage: ", kScoreUsage);
  PT_CHECK_ARG(!ref_paths.empty(), "--ref FILE is required\nusage: ", kScoreUsage);
  PT_ASSIGN_OR_RETURN(const std::vector<std::string> hypotheses, ReadScoreLines(hyp_path));
  std::vector<std::vector<std::string>> references;
  for (const std::string& path : ref_paths) {
    PT_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadScoreLines(path));
    references.push_back(std::move(lines));
  }
  std::vector<std::string> names = {hyp_path};
  names.insert(names.end(), ref_paths.begin(), ref_paths.end());
  PT_RETURN_IF_ERROR(CheckMetricInput(hypotheses, references, names));

  const BleuScore bleu = CorpusBleu(hypotheses, references);
  const ChrfScore chrf = CorpusChrf(hypotheses, references);
  const ChrfScore chrfpp = CorpusChrf(hypotheses, references, /*word_order=*/2);
  std::printf("%s\n%s\n%s\n", bleu.Format().c_str(), chrf.Format().c_str(),
              chrfpp.Format().c_str());

  std::vector<std::string> ref_names, precisions;
  for (const std::string& path : ref_paths) ref_names.push_back(JsonString(path));
  for (const double p : bleu.precisions) precisions.push_back(Number(p));
  std::printf(
      "%s\n",
      absl::StrCat("{\"hyp\": ", JsonString(hyp_path), ", \"refs\": [",
                   absl::StrJoin(ref_names, ", "), "], \"sentences\": ", hypotheses.size(),
                   ", \"bleu\": ", Number(bleu.score), ", \"bleu_precisions\": [",
                   absl::StrJoin(precisions, ", "), "], \"bleu_bp\": ", Number(bleu.bp),
                   ", \"bleu_ratio\": ", Number(bleu.ratio()), ", \"hyp_len\": ", bleu.sys_len,
                   ", \"ref_len\": ", bleu.ref_len, ", \"chrf\": ", Number(chrf.score),
                   ", \"chrfpp\": ", Number(chrfpp.score), "}")
          .c_str());
  return absl::OkStatus();
}

}  // namespace pipetrain
