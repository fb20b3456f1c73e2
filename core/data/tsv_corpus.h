// A user's own parallel data as corpus messages: a TSV file of
// (src_lang, tgt_lang, src, tgt) lines, or two line-aligned files with one
// language each. Each pair becomes a two-language message, usable in both
// directions; its source side is the pivot that decides its split.
//
// Malformed lines (bad UTF-8, a wrong column count, an unknown language
// code) are reported with file:line (the first `max_reported` of each file),
// counted in the builder's malformed.* counters, and skipped. Usable lines
// then pass the same text filters as gettext messages (tsv.* counters).
#ifndef PIPETRAIN_CORE_DATA_TSV_CORPUS_H_
#define PIPETRAIN_CORE_DATA_TSV_CORPUS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/data/corpus_builder.h"
#include "core/data/text_filters.h"

namespace pipetrain {

struct TsvOptions {
  TextFilterOptions filters;
  int max_reported = 20;  // malformed lines printed per file; all are counted
};

struct TsvSummary {
  int64_t lines = 0;
  int64_t pairs = 0;      // added to the builder
  int64_t malformed = 0;  // reported and skipped
  int64_t filtered = 0;   // well-formed, dropped by a text filter
};

// Lines "src_lang\ttgt_lang\tsrc\ttgt"; a first line that is exactly that
// header is skipped. Fails only when the file cannot be read.
absl::StatusOr<TsvSummary> AddTsvFile(const std::string& path, const TsvOptions& options,
                                      CorpusBuilder* builder);

// Line i of `src_path` translates line i of `tgt_path`. Fails when a file
// cannot be read or a language code is not one (language_codes.h).
absl::StatusOr<TsvSummary> AddParallelFiles(const std::string& src_path,
                                            const std::string& tgt_path,
                                            const std::string& src_lang,
                                            const std::string& tgt_lang, const TsvOptions& options,
                                            CorpusBuilder* builder);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_TSV_CORPUS_H_
