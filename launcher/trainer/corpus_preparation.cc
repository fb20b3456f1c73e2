#include "launcher/trainer/corpus_preparation.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/data/corpus_builder.h"
#include "core/data/gettext_source.h"
#include "core/data/sentencepiece_model.h"
#include "core/data/token_shard_writer.h"
#include "core/data/token_shards.h"
#include "core/data/vocab_builder.h"
#include "core/data/vocab_checksum.h"
#include "core/io/atomic_file.h"
#include "core/status_macros.h"
#include "core/util/log.h"
#include "models/parameter_store.h"

namespace pipetrain {
namespace {

bool Exists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}

absl::Status BuildFromGettext(const CorpusData& corpus) {
  LogInfo("data", "no corpus in %s: building it from %s (pipetrain data build)", corpus.dir(),
          corpus.build_from_gettext());
  CorpusOptions options;
  options.min_pairs = corpus.min_pairs();
  CorpusBuilder builder(options);
  PT_ASSIGN_OR_RETURN(const GettextSummary read,
                      AddGettextTree(corpus.build_from_gettext(), GettextOptions{}, &builder));
  PT_ASSIGN_OR_RETURN(const CorpusSummary built, builder.Build());
  PT_RETURN_IF_ERROR(builder.Write(corpus.dir()));
  LogInfo("data", "corpus: languages=%d directions=%d pairs=%d from %d catalogs", built.languages,
          built.directions, built.TotalPairs(), read.catalogs);
  return absl::OkStatus();
}

}  // namespace

std::string CorpusVocabPath(const RunSpec& spec) {
  return absl::StrCat(CorpusShardDir(spec), "/spm.model");
}

std::string CorpusShardDir(const RunSpec& spec) {
  // Shards hold the languages they were asked for, encoded with a vocabulary
  // of the model's size, so configs that train on different languages of one
  // corpus, or on the same languages with other vocabulary sizes (m2m_tiny
  // and m2m_200L), each get their own. The demo's 8,000 pieces keep the
  // name they always had.
  const TrainConfig& train = spec.train();
  const int vocab = spec.model().vocab_size();
  const std::string size = vocab == 8000 ? "" : absl::StrCat("-v", vocab);
  std::vector<std::string> languages(train.corpus().languages().begin(),
                                     train.corpus().languages().end());
  if (languages.empty()) return absl::StrCat(train.corpus().dir(), "/shards", size);
  std::sort(languages.begin(), languages.end());
  std::string joined = absl::StrJoin(languages, ".");
  if (joined.size() > 120) {
    joined = absl::StrFormat("%d-languages-%016x", languages.size(),
                             Fnv1a64(joined.data(), joined.size()));
  }
  return absl::StrCat(train.corpus().dir(), "/shards-", joined, size);
}

std::string RunVocabPath(const std::string& output_dir) {
  return absl::StrCat(output_dir, "/spm.model");
}

absl::Status KeepVocabularyWithRun(const RunSpec& spec, bool resuming) {
  // `from` is the corpus's vocabulary, which PrepareCorpus has just checked
  // against the shards' sealed manifest: the one copy that is vouched for.
  const std::string from = CorpusVocabPath(spec);
  const std::string to = RunVocabPath(spec.train().output_dir());
  PT_ASSIGN_OR_RETURN(const std::string contents, ReadFileToString(from));
  if (Exists(to)) {
    const absl::StatusOr<VocabCheck> check = CheckVocabChecksum(
        to, absl::StrCat("copy the vocabulary the run was trained with over it (cp ", from, " ",
                         to, ", if the corpus's has not been rebuilt since) and run again"));
    PT_ASSIGN_OR_RETURN(const std::string have, ReadFileToString(to));
    if (have == contents) {
      // The copy is intact (it equals the checked corpus vocabulary), so a
      // missing or damaged checksum file is what needs writing.
      if (!check.ok()) {
        LogWarning("data", "%s; rewriting %s: the vocabulary itself equals %s",
                   check.status().message(), VocabChecksumPath(to), from);
      }
      if (!check.ok() || *check == VocabCheck::kNoChecksum) {
        PT_RETURN_IF_ERROR(WriteVocabChecksum(to));
      }
      return absl::OkStatus();
    }
    if (resuming) {
      // A damaged copy says so; an intact one that differs means the
      // corpus's vocabulary was rebuilt under the run.
      PT_RETURN_IF_ERROR(check.status());
      return absl::FailedPreconditionError(absl::StrCat(
          "the run in ", spec.train().output_dir(), " was trained with the vocabulary ", to,
          ", which differs from the corpus's ", from,
          " now: resuming would change every token id. Restore that vocabulary, or "
          "set train.output_dir to a new directory"));
    }
  }
  std::error_code error;
  std::filesystem::create_directories(spec.train().output_dir(), error);
  // The old checksum goes first: a crash before the new one is written
  // leaves a copy without a checksum (a warning), never a false mismatch.
  std::filesystem::remove(VocabChecksumPath(to), error);
  absl::Status copied = WriteFileAtomically(to, contents);
  if (copied.ok()) copied = WriteVocabChecksum(to);
  if (!copied.ok()) {
    return absl::PermissionDeniedError(absl::StrCat("cannot copy the vocabulary ", from, " to ",
                                                    to, ": ", copied.message()));
  }
  return absl::OkStatus();
}

absl::Status PrepareCorpus(const RunSpec& spec) {
  const TrainConfig& train = spec.train();
  const CorpusData& corpus = train.corpus();
  // `data build` writes stats.tsv last: without it the corpus is incomplete.
  if (!Exists(absl::StrCat(corpus.dir(), "/stats.tsv"))) {
    PT_CHECK_ARG(!corpus.build_from_gettext().empty(), "train.corpus.dir '", corpus.dir(),
                 "' holds no complete corpus (no stats.tsv); build one with `pipetrain data build "
                 "--out ",
                 corpus.dir(), " ...`, or set train.corpus.build_from_gettext");
    PT_RETURN_IF_ERROR(BuildFromGettext(corpus));
  }
  const std::string vocab_path = CorpusVocabPath(spec);
  if (!Exists(vocab_path)) {
    LogInfo("data", "no vocabulary %s: training %d pieces with spm_train (pipetrain data vocab)",
            vocab_path, spec.model().vocab_size());
    VocabOptions options;
    options.vocab_size = spec.model().vocab_size();
    options.temperature = corpus.temperature();
    options.max_sentences = corpus.vocab_sentences();
    options.seed = train.seed();
    options.languages.assign(corpus.languages().begin(), corpus.languages().end());
    options.out_dir = CorpusShardDir(spec);
    PT_ASSIGN_OR_RETURN(const VocabSummary summary, BuildVocabulary(corpus.dir(), options));
    LogInfo("data", "vocabulary: %d pieces from %d sentences of %d languages in %.1fs",
            summary.vocab_size, summary.sampled_sentences, summary.languages,
            summary.total_seconds);
  }
  const std::string shard_dir = CorpusShardDir(spec);
  const bool have_shards = Exists(absl::StrCat(shard_dir, "/", kShardManifestName));
  // Existing shards vouch for the vocabulary they were encoded with (their
  // manifest's vocab_hash, sealed by its CRC-32C): check its bytes before
  // parsing it, so a damaged spm.model is named as such, and before the run
  // copies it.
  std::optional<CorpusShards> shards;
  if (have_shards) {
    PT_ASSIGN_OR_RETURN(shards, CorpusShards::Open(shard_dir));
    PT_RETURN_IF_ERROR(shards->CheckVocabulary(vocab_path));
  }
  PT_ASSIGN_OR_RETURN(const SentencePieceModel vocab, SentencePieceModel::Load(vocab_path));
  PT_CHECK_ARG(vocab.vocab_size() == spec.model().vocab_size(),
               "model.vocab_size=", spec.model().vocab_size(), " but the vocabulary ", vocab_path,
               " has ", vocab.vocab_size(), " pieces; set model.vocab_size=", vocab.vocab_size(),
               " or delete ", vocab_path, " (and ", shard_dir, ") to train a new one");
  if (!have_shards) {
    LogInfo("data", "no shards in %s: encoding the corpus (pipetrain data shard)", shard_dir);
    PT_ASSIGN_OR_RETURN(const uint64_t hash, HashFileContents(vocab_path));
    ShardVocabulary shard_vocab;
    shard_vocab.path = vocab_path;
    shard_vocab.hash = hash;
    shard_vocab.vocab_size = vocab.vocab_size();
    shard_vocab.encode = [&vocab](const std::string& text) { return vocab.Encode(text); };
    shard_vocab.language_tag_id = [&vocab](const std::string& code) {
      return vocab.PieceToId(LanguageTagPiece(code));
    };
    ShardOptions options;
    options.languages.assign(corpus.languages().begin(), corpus.languages().end());
    PT_ASSIGN_OR_RETURN(const ShardSummary summary,
                        WriteCorpusShards(corpus.dir(), shard_vocab, options, shard_dir));
    LogInfo("data", "shards: %d languages, %d directions, %d train pairs, %d train tokens in %.1fs",
            summary.languages, summary.directions, summary.pairs[0], summary.tokens[0],
            summary.seconds);
    PT_ASSIGN_OR_RETURN(shards, CorpusShards::Open(shard_dir));
  }
  // Each language's tag id must be its <2xx> piece: one flipped digit in
  // the manifest would otherwise train French targets under the Spanish tag.
  PT_RETURN_IF_ERROR(shards->CheckLanguageTags(
      [&vocab](const std::string& code) { return vocab.PieceToId(LanguageTagPiece(code)); },
      vocab_path));
  return absl::OkStatus();
}

}  // namespace pipetrain
