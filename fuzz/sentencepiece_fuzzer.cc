// Fuzz target: a SentencePiece .model file (core/data/sentencepiece_model.h),
// which `translate` and `data shard` read from a run or corpus directory.
// A model that loads is then used: encoding and decoding walk the tries and
// the precompiled charsmap the file described, so a table that passed the
// load checks but points outside itself shows up here.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/sentencepiece_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto model = pipetrain::SentencePieceModel::FromSerialized(bytes, "fuzz.model");
  if (!model.ok()) return 0;
  // Text with spaces, NFKC-relevant characters, a language tag, invalid
  // UTF-8 and control bytes, plus a slice of the input itself (the model's
  // own piece strings are likely in it).
  const std::string samples[] = {
      "Hello  world, ﬁne Ｔｅｘｔ ½ é e\xcc\x81!",
      "<2de> Guten Tag \xff\xfe broken \xc3",
      std::string("\x00\x01 \t\n tab", 9),
      std::string(bytes.substr(0, 64)),
  };
  for (const std::string& text : samples) {
    const std::vector<int32_t> ids = model->Encode(text);
    (void)model->Decode(ids);
    (void)model->Normalize(text);
  }
  const int32_t n = model->vocab_size();
  std::vector<int32_t> every;
  for (int32_t id = 0; id < n && id < 512; ++id) {
    every.push_back(id);
    (void)model->PieceToId(model->IdToPiece(id));
  }
  every.push_back(-1);
  every.push_back(n);
  (void)model->Decode(every);
  return 0;
}
