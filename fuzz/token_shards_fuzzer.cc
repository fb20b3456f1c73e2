// Fuzz target: a token shard directory as training opens it
// (core/data/token_shards.h through MultilingualLoader::Open), then a few
// steps' batches and the held-out pairs, which follow the offsets, language
// indices and pair lists the files hold. The input is a file bundle
// (fuzz/file_bundle.h) of, in order: manifest.tsv, train.tokens,
// train.pairs, dev.tokens, dev.pairs, test.tokens, test.pairs.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/data/multilingual_loader.h"
#include "fuzz/file_bundle.h"
#include "fuzz/fuzz_temp_dir.h"

namespace {

constexpr const char* kFiles[] = {"manifest.tsv", "train.tokens", "train.pairs", "dev.tokens",
                                  "dev.pairs",    "test.tokens",  "test.pairs"};
constexpr size_t kNumFiles = sizeof(kFiles) / sizeof(kFiles[0]);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pipetrain;
  fuzz::ClearFuzzTempDir();
  const auto files = fuzz::SplitBundle(data, size, kNumFiles);
  for (size_t i = 0; i < files.size(); ++i) fuzz::WriteFuzzFile(kFiles[i], files[i]);

  // Small pools and batches keep one input's work in the microseconds; the
  // checks do not depend on the sizes.
  LoaderOptions options;
  options.max_tokens = 256;
  options.max_len = 32;
  options.pool_batches = 2;
  options.seed = 7;
  auto loader = MultilingualLoader::Open(fuzz::FuzzTempDir(), options);
  fuzz::Explain("open", loader.status());
  if (!loader.ok()) return 0;
  for (int step = 0; step < 3; ++step) {
    if (!(*loader)->NextStepPairs().ok()) break;
  }
  const auto directions = (*loader)->directions();
  for (size_t d = 0; d < directions.size() && d < 8; ++d) {
    for (int split = 0; split < kNumSplits; ++split) {
      (void)(*loader)->DevPairs(directions[d].src, directions[d].tgt, split, 4);
    }
  }
  return 0;
}
