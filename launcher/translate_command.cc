#include "launcher/translate_command.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "core/data/language_codes.h"
#include "core/data/text_filters.h"
#include "core/status_macros.h"
#include "launcher/inference_model.h"
#include "models/translator.h"

ABSL_FLAG(std::string, ckpt, "",
          "translate, eval: a run directory (its latest checkpoint) or a step_N directory");
ABSL_FLAG(int32_t, beam, 1, "translate, eval: beam size; 1 is greedy decoding");
ABSL_FLAG(double, length_penalty, 1.0,
          "translate, eval: GNMT length-penalty exponent of beam search (0: none)");
ABSL_FLAG(int32_t, batch, 32, "translate, eval: sentences decoded together");
// Shared with `data build` (data_command.cc).
ABSL_DECLARE_FLAG(std::string, src_lang);
ABSL_DECLARE_FLAG(std::string, tgt_lang);
ABSL_DECLARE_FLAG(std::string, vocab);

namespace pipetrain {
namespace {

// The corpus code of a user's language name, and its tag id in `vocab`.
absl::StatusOr<int32_t> TargetTag(const SentencePieceModel& vocab, const std::string& flag,
                                  const std::string& value, const std::string& vocab_path) {
  PT_CHECK_ARG(!value.empty(), "--", flag, " is required, e.g. --", flag, " de");
  PT_ASSIGN_OR_RETURN(const LanguageCode code, NormalizeLanguageCode(value));
  const int32_t tag = vocab.PieceToId(LanguageTagPiece(code.code));
  PT_CHECK_ARG(tag >= 0, "--", flag, " ", value, ": the vocabulary ", vocab_path, " has no tag ",
               LanguageTagPiece(code.code), ", so the model was not trained on that language");
  return tag;
}

}  // namespace

absl::Status RunTranslateCommand() {
  PT_ASSIGN_OR_RETURN(InferenceModel loaded,
                      LoadInferenceModel(absl::GetFlag(FLAGS_ckpt), absl::GetFlag(FLAGS_vocab)));
  const SentencePieceModel& vocab = *loaded.vocab;
  // The source language is not tagged (the model reads it), but it must be
  // one the model knows.
  PT_RETURN_IF_ERROR(
      TargetTag(vocab, "src_lang", absl::GetFlag(FLAGS_src_lang), loaded.vocab_path).status());
  PT_ASSIGN_OR_RETURN(const int32_t tag, TargetTag(vocab, "tgt_lang", absl::GetFlag(FLAGS_tgt_lang),
                                                   loaded.vocab_path));
  PT_ASSIGN_OR_RETURN(std::unique_ptr<Translator> translator,
                      Translator::Create(loaded.spec.model(), loaded.model->params()));
  DecodeOptions options;
  options.beam_size = absl::GetFlag(FLAGS_beam);
  options.length_penalty = absl::GetFlag(FLAGS_length_penalty);
  // BranchNorm's scale at the checkpoint's own step, as eval and validation use.
  options.training_step = loaded.step;
  PT_CHECK_ARG(options.beam_size >= 1, "--beam ", options.beam_size, " must be >= 1");
  PT_CHECK_ARG(options.length_penalty >= 0, "--length_penalty ", options.length_penalty,
               " must be >= 0");
  const int batch = std::max(absl::GetFlag(FLAGS_batch), 1);
  // Room for the source: an encoder reads it alone; a decoder-only model
  // reads source, <s> and the target in one sequence, so half of it.
  const int positions = static_cast<int>(loaded.spec.model().max_positions());
  const int max_source =
      loaded.spec.model().kind() == DECODER_ONLY ? (positions - 1) / 2 : positions - 2;
  // Notes go to stderr: stdout carries the translations only.
  std::fprintf(stderr, "[translate] %s (step %lld), vocabulary %s, beam %d\n",
               loaded.checkpoint_dir.c_str(), static_cast<long long>(loaded.step),
               loaded.vocab_path.c_str(), options.beam_size);

  const auto start = std::chrono::steady_clock::now();
  int64_t lines = 0, truncated = 0;
  std::vector<std::vector<int32_t>> sources;
  std::vector<bool> empty;  // empty lines stay empty, without decoding
  auto flush = [&]() -> absl::Status {
    std::vector<std::vector<int32_t>> to_decode;
    for (size_t i = 0; i < sources.size(); ++i) {
      if (!empty[i]) to_decode.push_back(sources[i]);
    }
    std::vector<Hypothesis> best;
    if (!to_decode.empty()) {
      PT_ASSIGN_OR_RETURN(best, translator->Translate(to_decode, options));
    }
    size_t next = 0;
    for (size_t i = 0; i < sources.size(); ++i) {
      const std::string text = empty[i] ? "" : vocab.Decode(best[next++].tokens);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fputc('\n', stdout);
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      return absl::DataLossError("writing the translations to stdout failed (disk full?)");
    }
    sources.clear();
    empty.clear();
    return absl::OkStatus();
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    ++lines;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    PT_CHECK_ARG(IsValidUtf8(line), "stdin line ", lines,
                 " is not valid UTF-8; translate reads UTF-8 text, one sentence a line");
    std::vector<int32_t> ids = vocab.Encode(line);
    ids.insert(ids.begin(), tag);
    if (static_cast<int>(ids.size()) > max_source) {
      ids.resize(max_source);
      ++truncated;
    }
    empty.push_back(line.find_first_not_of(" \t") == std::string::npos);
    sources.push_back(std::move(ids));
    if (static_cast<int>(sources.size()) == batch) PT_RETURN_IF_ERROR(flush());
  }
  PT_RETURN_IF_ERROR(flush());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string cut =
      truncated > 0 ? absl::StrCat("; ", truncated, " sources cut to ", max_source, " tokens") : "";
  std::fprintf(stderr, "[translate] %lld lines in %.1fs (%.1f lines/s)%s\n",
               static_cast<long long>(lines), seconds, lines / std::max(seconds, 1e-9),
               cut.c_str());
  return absl::OkStatus();
}

}  // namespace pipetrain
