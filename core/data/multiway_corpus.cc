#include "core/data/multiway_corpus.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pipetrain {
namespace {

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

absl::Status BadLine(const std::string& path, int64_t line, const std::string& why) {
  return absl::DataLossError(absl::StrCat(path, ":", line, ": ", why));
}

}  // namespace

int32_t MultiwayCorpus::LanguageIndex(const std::string& code) const {
  const auto it = std::lower_bound(languages.begin(), languages.end(), code);
  return it != languages.end() && *it == code ? static_cast<int32_t>(it - languages.begin()) : -1;
}

std::vector<std::pair<std::string, std::string>> MultiwayCorpus::Pairs(
    const std::string& src, const std::string& tgt) const {
  std::vector<std::pair<std::string, std::string>> pairs;
  const int32_t s = LanguageIndex(src), t = LanguageIndex(tgt);
  if (s < 0 || t < 0 || s == t) return pairs;
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const Message& m : messages) {
    const std::string *a = nullptr, *b = nullptr;
    for (const auto& [lang, text] : m) {
      if (lang == s) a = &text;
      if (lang == t) b = &text;
    }
    if (a != nullptr && b != nullptr && seen.emplace(*a, *b).second) pairs.emplace_back(*a, *b);
  }
  return pairs;
}

absl::StatusOr<MultiwayCorpus> ReadMultiwayCorpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  // Codes first as strings; indices once the sorted list is known.
  std::vector<std::vector<std::pair<std::string, std::string>>> raw;
  std::set<std::string> codes;
  std::string line;
  int64_t number = 0, last_id = -1;
  while (std::getline(in, line)) {
    ++number;
    std::vector<std::string> fields = SplitTabs(line);
    if (fields.size() != 3) {
      return BadLine(path, number,
                     absl::StrCat(fields.size(), " columns, expected 3 (id, lang, text)"));
    }
    int64_t id;
    if (!absl::SimpleAtoi(fields[0], &id) || (id != last_id && id != last_id + 1)) {
      return BadLine(path, number,
                     absl::StrCat("message id '", fields[0], "' after ", last_id,
                                  ": ids must run 0, 1, 2, ... with a message's lines together"));
    }
    if (id != last_id) raw.emplace_back();
    last_id = id;
    for (const auto& [lang, text] : raw.back()) {
      if (lang == fields[1]) {
        return BadLine(path, number, absl::StrCat("message ", id, " has two ", lang, " texts"));
      }
    }
    codes.insert(fields[1]);
    raw.back().emplace_back(std::move(fields[1]), std::move(fields[2]));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  MultiwayCorpus corpus;
  corpus.languages.assign(codes.begin(), codes.end());
  corpus.messages.reserve(raw.size());
  for (auto& m : raw) {
    MultiwayCorpus::Message message;
    for (auto& [lang, text] : m) message.emplace_back(corpus.LanguageIndex(lang), std::move(text));
    corpus.messages.push_back(std::move(message));
  }
  return corpus;
}

absl::StatusOr<std::vector<CorpusDirection>> ReadDirections(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::vector<CorpusDirection> directions;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    if (++number == 1) continue;  // header
    std::vector<std::string> fields = SplitTabs(line);
    CorpusDirection d;
    if (fields.size() != 5 || !absl::SimpleAtoi(fields[2], &d.pairs[0]) ||
        !absl::SimpleAtoi(fields[3], &d.pairs[1]) || !absl::SimpleAtoi(fields[4], &d.pairs[2])) {
      return BadLine(path, number, "expected src, tgt and three pair counts");
    }
    d.src = std::move(fields[0]);
    d.tgt = std::move(fields[1]);
    directions.push_back(std::move(d));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path));
  return directions;
}

}  // namespace pipetrain
