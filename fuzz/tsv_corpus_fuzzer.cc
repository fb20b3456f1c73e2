// Fuzz target: a user's parallel corpus as `data build --from-tsv FILE`
// reads it (core/data/tsv_corpus.h), then the corpus rules and the written
// corpus (core/data/corpus_builder.h). The input is the TSV file. When it
// also holds a line that is exactly "\x1e" (ASCII record separator), the
// text after it is read as a second run: `--src A --tgt B` line-aligned
// files, A and B being the two halves of that text split at its first
// "\x1e" line again (or B empty).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/data/corpus_builder.h"
#include "core/data/tsv_corpus.h"
#include "fuzz/fuzz_temp_dir.h"

namespace {

constexpr std::string_view kSeparator = "\n\x1e\n";

// Splits `text` at the first separator line; `rest` is empty without one.
std::string_view SplitAt(std::string_view text, std::string_view* rest) {
  const size_t at = text.find(kSeparator);
  if (at == std::string_view::npos) {
    *rest = {};
    return text;
  }
  *rest = text.substr(at + kSeparator.size());
  return text.substr(0, at + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pipetrain;
  fuzz::ClearFuzzTempDir();
  std::string_view parallel;
  const std::string_view tsv =
      SplitAt(std::string_view(reinterpret_cast<const char*>(data), size), &parallel);

  CorpusOptions corpus_options;
  corpus_options.progress = false;
  CorpusBuilder builder(corpus_options);
  TsvOptions options;
  options.max_reported = 1;  // the reporting path runs; the log stays short
  if (!AddTsvFile(fuzz::WriteFuzzFile("corpus.tsv", tsv), options, &builder).ok()) return 0;
  if (!parallel.empty()) {
    std::string_view tgt;
    const std::string_view src = SplitAt(parallel, &tgt);
    (void)AddParallelFiles(fuzz::WriteFuzzFile("src.txt", src), fuzz::WriteFuzzFile("tgt.txt", tgt),
                           "en", "de", options, &builder);
  }
  auto summary = builder.Build();
  if (!summary.ok()) return 0;
  (void)builder.Write(fuzz::FuzzTempDir() + "/corpus");
  return 0;
}
