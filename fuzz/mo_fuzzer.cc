// Fuzz target: a gettext .mo catalog as `data build --from-gettext` reads it
// (core/data/mo_reader.h), then its Plural-Forms formula
// (core/data/plural_forms.h), which comes from the same untrusted file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/data/mo_reader.h"
#include "core/data/plural_forms.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto catalog = pipetrain::ParseMo(bytes, "fuzz.mo");
  if (!catalog.ok()) return 0;
  (void)pipetrain::MoCharset(catalog->header);
  auto plural =
      pipetrain::PluralForms::Parse(pipetrain::MoHeaderField(catalog->header, "Plural-Forms"));
  if (!plural.ok()) return 0;
  // The counts gettext_source.cc evaluates, and the extremes of uint64.
  for (uint64_t n = 0; n < 128; ++n) (void)plural->FormFor(n);
  (void)plural->FormFor(UINT64_MAX);
  (void)plural->FormFor(uint64_t{1} << 63);
  return 0;
}
