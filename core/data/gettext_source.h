// The gettext catalogs of a locale tree (/usr/share/locale/<locale>/
// LC_MESSAGES/<domain>.mo) as a multi-way corpus: one message per (domain,
// msgctxt, msgid), its English msgid the pivot, every locale's msgstr a
// translation. Plural entries give two messages: the singular msgid with the
// form each language uses for n = 1, and msgid_plural with the form for
// n = 5, each found through the catalog's own Plural-Forms formula (the
// index alone means a different count in every language).
#ifndef PIPETRAIN_CORE_DATA_GETTEXT_SOURCE_H_
#define PIPETRAIN_CORE_DATA_GETTEXT_SOURCE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/data/corpus_builder.h"
#include "core/data/text_filters.h"

namespace pipetrain {

struct GettextOptions {
  TextFilterOptions filters;
  bool progress = true;  // catalogs read, rate and ETA on stderr, every second or so
};

struct GettextSummary {
  int64_t locales = 0;          // directories read
  int64_t locales_skipped = 0;  // not a language code, or English (the msgid side)
  int64_t catalogs = 0;         // .mo files read
  int64_t catalogs_failed = 0;  // unreadable, corrupt or in an unknown charset
  int64_t entries = 0;          // translations looked at
  int64_t translations = 0;     // translations kept
};

// Reads every catalog under `root` into `builder`. Per-catalog problems
// are logged with the file's path, counted (builder->counts()) and skipped;
// the call fails only when `root` cannot be read or holds no catalog.
absl::StatusOr<GettextSummary> AddGettextTree(const std::string& root,
                                              const GettextOptions& options,
                                              CorpusBuilder* builder);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_GETTEXT_SOURCE_H_
