#include "launcher/trainer/validation.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/data/collate.h"
#include "core/metrics/bleu.h"
#include "core/metrics/chrf.h"
#include "core/status_macros.h"
#include "models/translator.h"

namespace pipetrain {
namespace {

// `pairs` cut into consecutive batches of at most `budget` padded tokens.
std::vector<std::vector<SentencePair>> BatchesWithin(ModelKind kind,
                                                     const std::vector<SentencePair>& pairs,
                                                     int64_t budget) {
  std::vector<std::vector<SentencePair>> batches;
  std::vector<SentencePair> current;
  int64_t longest = 0;
  for (const SentencePair& pair : pairs) {
    const int64_t cost = PairTokens(kind, pair);
    const int64_t next_longest = std::max(longest, cost);
    if (!current.empty() && next_longest * static_cast<int64_t>(current.size() + 1) > budget) {
      batches.push_back(std::move(current));
      current.clear();
      longest = 0;
    }
    longest = std::max(longest, cost);
    current.push_back(pair);
  }
  if (!current.empty()) batches.push_back(std::move(current));
  return batches;
}

// The `count` directions ("src-tgt") with the most pairs in `corpus` among
// `languages` (all when empty; then among the 8 languages with the most
// sentences, to keep the search small), largest first.
std::vector<std::string> LargestDirections(const MultiwayCorpus& corpus,
                                           std::vector<std::string> languages, size_t count) {
  if (languages.empty()) {
    std::vector<int64_t> sentences(corpus.languages.size(), 0);
    for (const MultiwayCorpus::Message& message : corpus.messages) {
      for (const auto& [language, text] : message) ++sentences[language];
    }
    std::vector<size_t> order(corpus.languages.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return sentences[a] > sentences[b]; });
    for (size_t i = 0; i < order.size() && i < 8; ++i) {
      languages.push_back(corpus.languages[order[i]]);
    }
  }
  std::vector<std::pair<int64_t, std::string>> found;
  for (const std::string& src : languages) {
    for (const std::string& tgt : languages) {
      if (src == tgt || corpus.LanguageIndex(src) < 0 || corpus.LanguageIndex(tgt) < 0) continue;
      const int64_t pairs = static_cast<int64_t>(corpus.Pairs(src, tgt).size());
      if (pairs > 0) found.push_back({-pairs, absl::StrCat(src, "-", tgt)});
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  for (size_t i = 0; i < found.size() && i < count; ++i) names.push_back(found[i].second);
  return names;
}

}  // namespace

ValidationOptions ValidationOptionsFromSpec(const RunSpec& spec) {
  const Validation& v = spec.train().validation();
  ValidationOptions options;
  options.directions.assign(v.directions().begin(), v.directions().end());
  options.languages.assign(spec.train().corpus().languages().begin(),
                           spec.train().corpus().languages().end());
  options.sample_per_group = v.sample_per_group();
  if (!v.pivot().empty()) options.pivot = v.pivot();
  options.sample_seed = spec.train().seed();
  options.sentences = v.sentences();
  options.loss_sentences = v.loss_sentences();
  options.beam_size = v.beam_size();
  options.length_penalty = v.length_penalty();
  options.max_length = spec.train().corpus().max_length();
  options.tokens_per_batch = std::max(spec.train().tokens_per_batch(), 256);
  return options;
}

std::string ValidationResult::Summary() const {
  std::vector<std::string> parts;
  for (const DirectionScores& d : directions) {
    if (d.sentences == 0) continue;
    parts.push_back(absl::StrFormat("%s-%s BLEU=%.2f chrF=%.2f", d.src, d.tgt, d.bleu, d.chrf));
  }
  return absl::StrFormat("val_loss=%.4f val_nll=%.4f ppl=%.2f%s%s (%d tokens, %.1fs)", loss, nll,
                         std::exp(nll), parts.empty() ? "" : " ", absl::StrJoin(parts, " "), tokens,
                         seconds);
}

std::vector<GroupScores> ValidationResult::Groups() const {
  std::vector<GroupScores> groups;
  for (DirectionGroup group :
       {DirectionGroup::kFromPivot, DirectionGroup::kToPivot, DirectionGroup::kBetweenOthers}) {
    GroupScores scores{.name = DirectionGroupName(group, pivot)};
    for (const DirectionScores& d : directions) {
      if (d.sentences == 0 || GroupOf(d.src, d.tgt, pivot) != group) continue;
      ++scores.directions;
      scores.bleu += d.bleu;
      scores.chrf += d.chrf;
    }
    if (scores.directions == 0) continue;
    scores.bleu /= scores.directions;
    scores.chrf /= scores.directions;
    groups.push_back(scores);
  }
  return groups;
}

std::string ValidationResult::GroupSummary() const {
  std::vector<std::string> parts;
  for (const GroupScores& g : Groups()) {
    parts.push_back(
        absl::StrFormat("%s BLEU=%.2f chrF=%.2f (%d)", g.name, g.bleu, g.chrf, g.directions));
  }
  return absl::StrJoin(parts, " | ");
}

std::string ValidationResult::Json(int64_t step) const {
  std::string out = absl::StrFormat(
      "{\"step\":%d,\"val_loss\":%.6f,\"val_nll\":%.6f,\"val_ppl\":%.4f,\"val_tokens\":%d", step,
      loss, nll, std::exp(nll), tokens);
  for (const DirectionScores& d : directions) {
    if (d.sentences == 0) continue;
    const std::string key = absl::StrCat(d.src, "-", d.tgt);
    absl::StrAppendFormat(&out, ",\"bleu/%s\":%.4f,\"chrf/%s\":%.4f", key, d.bleu, key, d.chrf);
  }
  for (const GroupScores& g : Groups()) {
    absl::StrAppendFormat(&out, ",\"bleu/%s\":%.4f,\"chrf/%s\":%.4f", g.name, g.bleu, g.name,
                          g.chrf);
  }
  absl::StrAppendFormat(&out, ",\"val_seconds\":%.3f}", seconds);
  return out;
}

absl::StatusOr<std::unique_ptr<Validator>> Validator::Create(const ModelSpec& spec,
                                                             const std::string& corpus_dir,
                                                             const SentencePieceModel& vocab,
                                                             const ValidationOptions& options) {
  PT_CHECK_ARG(options.split == "dev" || options.split == "test", "validation split '",
               options.split, "' is not dev or test");
  PT_ASSIGN_OR_RETURN(
      const MultiwayCorpus corpus,
      ReadMultiwayCorpus(absl::StrCat(corpus_dir, "/", options.split, ".messages.tsv")));
  std::unique_ptr<Validator> validator(new Validator(spec, vocab, options));
  const int max_length = options.max_length > 0 ? options.max_length : spec.max_positions() - 2;
  std::vector<std::string> names = options.directions;
  int sentences = options.sentences;
  if (names.empty() && options.sample_per_group > 0) {
    // Every direction of the languages with a pair in the split, then the
    // seeded sample of each group.
    std::vector<std::string> languages = options.languages;
    if (languages.empty()) languages = corpus.languages;
    std::vector<std::pair<std::string, std::string>> available;
    for (const std::string& src : languages) {
      for (const std::string& tgt : languages) {
        if (src == tgt || corpus.LanguageIndex(src) < 0 || corpus.LanguageIndex(tgt) < 0) continue;
        if (!corpus.Pairs(src, tgt).empty()) available.push_back({src, tgt});
      }
    }
    names = SampleDirections(available, options.groups, options.sample_per_group, options.pivot,
                             options.sample_seed);
    PT_CHECK_ARG(!names.empty(), "no direction of the groups asked for has a pair in ", corpus_dir,
                 "/", options.split, " among the training languages");
  }
  if (names.empty()) {
    names = LargestDirections(corpus, options.languages, /*count=*/8);
    sentences = 0;  // the loss only
    PT_CHECK_ARG(!names.empty(), "no direction of ", corpus_dir, "/", options.split,
                 " has pairs among the training languages; validate on named directions");
  }
  for (const std::string& name : names) {
    const size_t dash = name.find('-');
    PT_CHECK_ARG(dash != std::string::npos, "direction '", name, "' is not src-tgt");
    Direction d;
    d.src = name.substr(0, dash);
    d.tgt = name.substr(dash + 1);
    for (const std::string& code : {d.src, d.tgt}) {
      PT_CHECK_ARG(corpus.LanguageIndex(code) >= 0, "direction ", name, ": language '", code,
                   "' has no sentence in ", corpus_dir, "/", options.split,
                   ".messages.tsv (see its languages.txt)");
    }
    const int32_t tag = vocab.PieceToId(LanguageTagPiece(d.tgt));
    PT_CHECK_ARG(tag >= 0, "the vocabulary has no tag ", LanguageTagPiece(d.tgt), " for direction ",
                 name, "; was it trained on this corpus?");
    const auto pairs = corpus.Pairs(d.src, d.tgt);
    PT_CHECK_ARG(!pairs.empty(), "direction ", name, " has no ", options.split, " pair in ",
                 corpus_dir);
    for (const auto& [src_text, tgt_text] : pairs) {
      std::vector<int32_t> src = vocab.Encode(src_text);
      src.insert(src.begin(), tag);
      std::vector<int32_t> tgt = vocab.Encode(tgt_text);
      if (static_cast<int>(d.sources.size()) < sentences) {
        std::vector<int32_t> clipped = src;
        if (static_cast<int>(clipped.size()) > max_length) clipped.resize(max_length);
        d.sources.push_back(std::move(clipped));
        d.source_texts.push_back(src_text);
        d.references.push_back(tgt_text);
      }
      if (static_cast<int>(d.loss_pairs.size()) < options.loss_sentences &&
          static_cast<int>(src.size()) <= max_length &&
          static_cast<int>(tgt.size()) <= max_length && !tgt.empty()) {
        d.loss_pairs.push_back(SentencePair{std::move(src), std::move(tgt)});
      }
      if (static_cast<int>(d.sources.size()) >= sentences &&
          static_cast<int>(d.loss_pairs.size()) >= options.loss_sentences) {
        break;
      }
    }
    validator->directions_.push_back(std::move(d));
  }
  PT_ASSIGN_OR_RETURN(validator->model_, TransformerModel::Create(spec, DType::kF32, /*seed=*/0));
  validator->model_->SetForwardOnly();
  return validator;
}

absl::StatusOr<ValidationResult> Validator::Run(const Tensor& flat_params, int64_t training_step) {
  const auto start = std::chrono::steady_clock::now();
  // Decoding runs in f32 on the CPU whatever precision or device trained.
  const absl::Status loaded = model_->params().LoadPackedParams(flat_params);
  PT_CHECK_ARG(loaded.ok(), "validation: ", loaded.message());
  // One translator for the whole run; later validations only copy weights.
  if (translator_ == nullptr) {
    PT_ASSIGN_OR_RETURN(translator_, Translator::Create(spec_, model_->params()));
  } else {
    PT_RETURN_IF_ERROR(translator_->SetParameters(model_->params()));
  }
  const Translator* translator = translator_.get();
  DecodeOptions decode;
  decode.beam_size = options_.beam_size;
  decode.length_penalty = options_.length_penalty;
  decode.training_step = training_step;
  ValidationResult result;
  result.pivot = options_.pivot;
  double loss_sum = 0, nll_sum = 0;
  for (const Direction& d : directions_) {
    DirectionScores scores;
    scores.src = d.src;
    scores.tgt = d.tgt;
    double direction_loss = 0;
    int64_t direction_tokens = 0;
    for (const std::vector<SentencePair>& group :
         BatchesWithin(spec_.kind(), d.loss_pairs, options_.tokens_per_batch)) {
      PT_ASSIGN_OR_RETURN(const Batch batch, Collate(spec_.kind(), group));
      ModelSaved saved;
      const StepContext ctx{.step = std::max<int64_t>(training_step, 0), .training = false};
      PT_ASSIGN_OR_RETURN(const ops::CrossEntropyStats stats, model_->Forward(ctx, batch, &saved));
      direction_loss += stats.loss_sum;
      loss_sum += stats.loss_sum;
      nll_sum += stats.nll_sum;
      direction_tokens += stats.tokens;
    }
    result.tokens += direction_tokens;
    scores.loss = direction_loss / std::max<int64_t>(direction_tokens, 1);
    std::vector<std::string> hypotheses;
    for (size_t first = 0; first < d.sources.size(); first += 32) {
      const size_t last = std::min(d.sources.size(), first + 32);
      const std::vector<std::vector<int32_t>> chunk(d.sources.begin() + first,
                                                    d.sources.begin() + last);
      PT_ASSIGN_OR_RETURN(const std::vector<Hypothesis> best, translator->Translate(chunk, decode));
      for (const Hypothesis& h : best) hypotheses.push_back(vocab_.Decode(h.tokens));
    }
    scores.sentences = static_cast<int>(hypotheses.size());
    if (!hypotheses.empty()) {
      scores.bleu = CorpusBleu(hypotheses, {d.references}).score;
      scores.chrf = CorpusChrf(hypotheses, {d.references}).score;
    }
    if (!hypotheses.empty()) {
      scores.sample_source = d.source_texts[0];
      scores.sample_hypothesis = hypotheses[0];
      scores.sample_reference = d.references[0];
    }
    result.directions.push_back(std::move(scores));
  }
  result.loss = loss_sum / std::max<int64_t>(result.tokens, 1);
  result.nll = nll_sum / std::max<int64_t>(result.tokens, 1);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace pipetrain
