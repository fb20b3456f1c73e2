// Fuzz target: a token shard directory as training opens it
// (core/data/token_shards.h through MultilingualLoader::Open), then a few
// steps' batches and the held-out pairs, which follow the offsets, language
// indices and pair lists the files hold. The input is a file bundle
// (fuzz/file_bundle.h) of, in order:
//   options        byte 0 bit 0: reseal manifest.tsv, i.e. drop its last
//                  line if that is a `crc32c` line and append
//                  `crc32c\t0x<8 hex>` over the bytes before it
//                  (SealShardManifest), so a mutated format-2 manifest gets
//                  past its CRC-32C to the lines and binary files behind it;
//                  clear: the manifest is written as it came, which keeps the
//                  seal check itself (and format-1 manifests) under test;
//   manifest.tsv, train.tokens, train.pairs, dev.tokens, dev.pairs,
//   test.tokens, test.pairs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/data/multilingual_loader.h"
#include "core/data/token_shards.h"
#include "fuzz/file_bundle.h"
#include "fuzz/fuzz_temp_dir.h"

namespace {

constexpr const char* kFiles[] = {"manifest.tsv", "train.tokens", "train.pairs", "dev.tokens",
                                  "dev.pairs",    "test.tokens",  "test.pairs"};
constexpr size_t kNumFiles = sizeof(kFiles) / sizeof(kFiles[0]);

// `manifest` with its crc32c line (if it has one as its last line) redone
// over the bytes before it; a body without a final newline gets one, so the
// seal is a line of its own.
std::string Reseal(std::string_view manifest) {
  std::string_view body = manifest;
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
  const size_t last = body.rfind('\n');
  const size_t start = last == std::string_view::npos ? 0 : last + 1;
  if (body.substr(start).starts_with("crc32c")) {
    body = body.substr(0, start);
  } else {
    body = manifest;
  }
  std::string text(body);
  if (!text.empty() && text.back() != '\n') text += '\n';
  return pipetrain::SealShardManifest(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pipetrain;
  fuzz::ClearFuzzTempDir();
  const auto records = fuzz::SplitBundle(data, size, 1 + kNumFiles);
  if (records.empty()) return 0;
  const bool reseal = !records[0].empty() && (records[0][0] & 1) != 0;
  for (size_t i = 1; i < records.size(); ++i) {
    if (i == 1 && reseal) {
      fuzz::WriteFuzzFile(kFiles[0], Reseal(records[1]));
    } else {
      fuzz::WriteFuzzFile(kFiles[i - 1], records[i]);
    }
  }

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
