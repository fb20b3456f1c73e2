// Fuzz target: a run spec as `pipetrain train --spec FILE` loads it
// (core/config/spec_loader.h): text-format parsing with enum spellings,
// `--set` overrides, validation, defaults. The input is the spec file; its
// lines "#set PATH=VALUE" (comments to the parser) are also applied as
// --set overrides, so committed seeds stay valid specs.
//
// Checked beyond "no crash": a spec that loads resolves to text that parses
// back to the same spec (checkpoints store that text and resume from it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/spec_loader.h"
#include "fuzz/fuzz_temp_dir.h"

namespace {

// Few overrides: each is a full descriptor walk, and a mutated input can
// hold thousands of lines.
constexpr size_t kMaxOverrides = 8;

std::vector<std::string> Overrides(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size() && out.size() < kMaxOverrides) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    if (line.substr(0, 5) == "#set ") out.emplace_back(line.substr(5));
    start = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string path = pipetrain::fuzz::WriteFuzzFile("spec.pbtxt", text);
  auto spec = pipetrain::LoadRunSpec(path, "", Overrides(text));
  if (!spec.ok()) return 0;

  const std::string resolved = pipetrain::ResolvedSpecText(*spec);
  auto again = pipetrain::ParseRunSpecText(resolved, "resolved.pbtxt");
  if (!again.ok() || again->SerializeAsString() != spec->SerializeAsString()) {
    std::fprintf(stderr, "resolved spec does not parse back to itself: %s\n--- resolved:\n%s\n",
                 again.ok() ? "different message" : std::string(again.status().message()).c_str(),
                 resolved.c_str());
    std::abort();
  }
  // Every layer's norm, for the first layers of each stack (a valid spec may
  // have thousands).
  for (const pipetrain::Stack stack : {pipetrain::ENCODER, pipetrain::DECODER}) {
    for (int layer = 0; layer < 64; ++layer)
      (void)pipetrain::NormForLayer(spec->model(), stack, layer);
  }
  return 0;
}
