#include "core/data/vocab_builder.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/data/batch.h"
#include "core/data/multiway_corpus.h"
#include "core/data/sentencepiece_model.h"
#include "core/philox.h"
#include "core/status_macros.h"

extern char** environ;

namespace pipetrain {
namespace {

namespace fs = std::filesystem;

constexpr char kInstallHint[] =
    "install Debian's sentencepiece package (apt-get install sentencepiece; deploy/setup.sh "
    "does it)";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// FNV-1a, 32 bits: a language's random stream depends on its code only, so
// adding a language to the corpus does not change what the others draw.
uint32_t CodeHash(const std::string& code) {
  uint32_t h = 2166136261u;
  for (const char c : code) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

absl::StatusOr<std::vector<std::string>> ReadLanguageList(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open (", std::strerror(errno),
                                            "); is the directory a corpus written by `pipetrain "
                                            "data build`?"));
  }
  std::vector<std::string> codes;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    if (line.find_first_of(", \t\r") != std::string::npos) {
      return absl::DataLossError(absl::StrCat(path, ":", number, ": '", line,
                                              "' is not a language code (one code a line)"));
    }
    codes.push_back(line);
  }
  if (codes.empty()) return absl::DataLossError(absl::StrCat(path, ": no language codes"));
  return codes;
}

// The last `max_lines` lines of a file, for error messages.
std::string Tail(const std::string& path, size_t max_lines) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > max_lines) lines.pop_front();
  }
  return absl::StrJoin(lines, "\n");
}

// Runs `program args...` without a shell, stdin from /dev/null, stdout and
// stderr into `log_path`, and waits for it.
absl::Status RunTool(const std::string& program, const std::vector<std::string>& args,
                     const std::string& log_path) {
  std::vector<std::string> argv_strings = {program};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int spawn_error =
      posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", program, ": ",
                                            std::strerror(spawn_error), "; ", kInstallHint));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(absl::StrCat("waiting for ", program, ": ", std::strerror(errno)));
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  const std::string how = WIFEXITED(status)
                              ? absl::StrCat("exited with status ", WEXITSTATUS(status))
                              : absl::StrCat("was killed by signal ", WTERMSIG(status));
  return absl::InternalError(absl::StrCat(program, " ", how, "; the end of its log (", log_path,
                                          "):\n", Tail(log_path, 12)));
}

// Removes the listed files when it goes out of scope (the sample and
// spm_train's outputs under temporary names), whatever happened.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  ~RemoveOnExit() {
    std::error_code ec;
    for (const std::string& p : paths_) fs::remove(p, ec);
  }

 private:
  std::vector<std::string> paths_;
};

// The distinct train sentences of each language, in corpus order.
struct LanguageSentences {
  std::string language;
  std::vector<std::string_view> sentences;
};

std::vector<LanguageSentences> DistinctSentences(const MultiwayCorpus& corpus) {
  std::vector<LanguageSentences> out(corpus.languages.size());
  std::vector<std::unordered_set<std::string_view>> seen(corpus.languages.size());
  for (size_t l = 0; l < corpus.languages.size(); ++l) out[l].language = corpus.languages[l];
  for (const MultiwayCorpus::Message& m : corpus.messages) {
    for (const auto& [lang, text] : m) {
      if (seen[lang].insert(text).second) out[lang].sentences.push_back(text);
    }
  }
  return out;
}

// `quota` lines of one language: a seeded random order of its sentences,
// taken whole as often as the quota holds them and then its first
// (quota mod n): without replacement until every sentence is in.
void DrawLanguage(const LanguageSentences& lang, int64_t quota, uint64_t seed, std::string* out) {
  const int64_t n = static_cast<int64_t>(lang.sentences.size());
  if (n == 0 || quota <= 0) return;
  const PhiloxStream rng(RngKey{seed, 0, CodeHash(lang.language), 0, 0});
  std::vector<int32_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
  const int64_t shuffled = std::min(quota, n);
  for (int64_t i = 0; i < shuffled; ++i) {
    const uint64_t r = (static_cast<uint64_t>(rng.Bits(2 * i)) << 32) | rng.Bits(2 * i + 1);
    const int64_t j = i + static_cast<int64_t>(r % static_cast<uint64_t>(n - i));
    std::swap(order[i], order[j]);
  }
  for (int64_t k = 0; k < quota; ++k) {
    out->append(lang.sentences[order[k % n]]);
    out->push_back('\n');
  }
}

}  // namespace

std::vector<int64_t> TemperatureQuotas(const std::vector<int64_t>& counts, double temperature,
                                       int64_t total) {
  std::vector<int64_t> quotas(counts.size(), 0);
  std::vector<double> weights(counts.size(), 0.0);
  double sum = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > 0) weights[i] = std::pow(static_cast<double>(counts[i]), 1.0 / temperature);
    sum += weights[i];
  }
  if (sum <= 0 || total <= 0) return quotas;
  std::vector<std::pair<double, size_t>> remainders;
  int64_t given = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double exact = static_cast<double>(total) * weights[i] / sum;
    quotas[i] = static_cast<int64_t>(std::floor(exact));
    given += quotas[i];
    if (weights[i] > 0) remainders.emplace_back(exact - static_cast<double>(quotas[i]), i);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total; k = (k + 1) % remainders.size()) {
    ++quotas[remainders[k].second];
    ++given;
  }
  return quotas;
}

absl::StatusOr<std::string> FindSentencePieceTool(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is not an executable file; ", kInstallHint));
  }
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  for (const absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return absl::FailedPreconditionError(
      absl::StrCat(name, " not found in PATH (", path, "); ", kInstallHint));
}

absl::StatusOr<VocabSummary> BuildVocabulary(const std::string& corpus_dir,
                                             const VocabOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  PT_CHECK_ARG(!corpus_dir.empty(),
               "--corpus DIR is required (a directory `pipetrain data build` wrote)");
  // spm_train needs its 4 special pieces, 256 byte pieces and the tags.
  PT_CHECK_ARG(options.temperature > 0, "--temperature must be > 0 (got ", options.temperature,
               ")");
  PT_CHECK_ARG(options.max_sentences > 0, "--vocab_sentences must be > 0 (got ",
               options.max_sentences, ")");
  PT_ASSIGN_OR_RETURN(const std::string spm_train, FindSentencePieceTool(options.spm_train));

  PT_ASSIGN_OR_RETURN(std::vector<std::string> tags,
                      ReadLanguageList(absl::StrCat(corpus_dir, "/languages.txt")));
  if (!options.languages.empty()) {
    for (const std::string& code : options.languages) {
      PT_CHECK_ARG(std::find(tags.begin(), tags.end(), code) != tags.end(), "language '", code,
                   "' is not in ", corpus_dir, "/languages.txt");
    }
    tags = options.languages;
  }
  const std::string out_dir = options.out_dir.empty() ? corpus_dir : options.out_dir;
  {
    std::error_code ec;
    fs::create_directories(out_dir, ec);
  }
  const int32_t reserved = 4 + 256 + static_cast<int32_t>(tags.size());
  PT_CHECK_ARG(options.vocab_size > reserved, "--vocab_size ", options.vocab_size,
               " leaves no room for learned pieces: ", reserved,
               " are taken by <pad> <s> </s> <unk>, 256 byte pieces and ", tags.size(),
               " language tags");
  const std::string train_path = absl::StrCat(corpus_dir, "/train.messages.tsv");
  PT_ASSIGN_OR_RETURN(const MultiwayCorpus corpus, ReadMultiwayCorpus(train_path));
  std::vector<LanguageSentences> languages = DistinctSentences(corpus);
  if (!options.languages.empty()) {
    std::erase_if(languages, [&](const LanguageSentences& l) {
      return std::find(tags.begin(), tags.end(), l.language) == tags.end();
    });
  }

  VocabSummary summary;
  summary.languages = static_cast<int64_t>(languages.size());
  summary.language_tags = static_cast<int64_t>(tags.size());
  std::vector<int64_t> counts;
  for (const LanguageSentences& l : languages) {
    counts.push_back(static_cast<int64_t>(l.sentences.size()));
    summary.distinct_sentences += counts.back();
  }
  PT_CHECK_ARG(summary.distinct_sentences > 0, train_path, ": no train sentences");
  const int64_t total = std::min(options.max_sentences, summary.distinct_sentences);
  const std::vector<int64_t> quotas = TemperatureQuotas(counts, options.temperature, total);

  const std::string tmp_prefix = absl::StrCat(out_dir, "/.spm_tmp.", getpid());
  const std::string sample_path = tmp_prefix + ".sample.txt";
  const RemoveOnExit cleanup({sample_path, tmp_prefix + ".model", tmp_prefix + ".vocab"});
  {
    std::string sample;
    for (size_t l = 0; l < languages.size(); ++l) {
      DrawLanguage(languages[l], quotas[l], options.seed, &sample);
      summary.per_language.push_back({languages[l].language, quotas[l], counts[l]});
    }
    std::ofstream out(sample_path, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(absl::StrCat("cannot write ", sample_path));
    }
    out.write(sample.data(), static_cast<std::streamsize>(sample.size()));
    out.close();
    if (!out) {
      return absl::DataLossError(absl::StrCat("writing ", sample_path, " failed (disk full?)"));
    }
  }
  summary.sampled_sentences = total;
  std::stable_sort(summary.per_language.begin(), summary.per_language.end(),
                   [](const auto& a, const auto& b) { return a.sampled > b.sampled; });
  summary.read_seconds = SecondsSince(start);

  std::vector<std::string> tag_pieces;
  for (const std::string& code : tags) tag_pieces.push_back(LanguageTagPiece(code));
  const int32_t threads = options.num_threads > 0
                              ? options.num_threads
                              : std::max(1u, std::thread::hardware_concurrency());
  const std::vector<std::string> args = {
      absl::StrCat("--input=", sample_path),
      absl::StrCat("--model_prefix=", tmp_prefix),
      "--model_type=unigram",
      absl::StrCat("--vocab_size=", options.vocab_size),
      "--character_coverage=0.9995",
      absl::StrCat("--pad_id=", kPadId),
      absl::StrCat("--bos_id=", kBosId),
      absl::StrCat("--eos_id=", kEosId),
      absl::StrCat("--unk_id=", kUnkId),
      absl::StrCat("--user_defined_symbols=", absl::StrJoin(tag_pieces, ",")),
      "--byte_fallback=true",
      // Why identity without whitespace collapsing: docs/data.md, "Vocabulary".
      "--normalization_rule_name=identity",
      "--remove_extra_whitespaces=false",
      "--add_dummy_prefix=true",
      // The sample is already drawn; spm_train takes all of it, in order.
      "--input_sentence_size=0",
      "--shuffle_input_sentence=false",
      // Texts are at most 1,000 code points (text_filters.h): 4,000 bytes.
      "--max_sentence_length=4096",
      absl::StrCat("--num_threads=", threads),
      absl::StrCat("--random_seed=", options.seed % 4294967295u),
  };
  summary.log_path = absl::StrCat(out_dir, "/spm_train.log");
  const auto train_start = std::chrono::steady_clock::now();
  PT_RETURN_IF_ERROR(RunTool(spm_train, args, summary.log_path));
  summary.train_seconds = SecondsSince(train_start);

  // Check what spm_train made before it replaces anything: pipetrain's ids
  // and every language tag as one piece.
  const std::string tmp_model = tmp_prefix + ".model";
  PT_ASSIGN_OR_RETURN(const SentencePieceModel model, SentencePieceModel::Load(tmp_model));
  const std::pair<const char*, int32_t> specials[] = {
      {"<pad>", kPadId}, {"<s>", kBosId}, {"</s>", kEosId}, {"<unk>", kUnkId}};
  for (const auto& [piece, id] : specials) {
    if (model.PieceToId(piece) != id) {
      return absl::InternalError(absl::StrCat(tmp_model, ": ", piece, " has id ",
                                              model.PieceToId(piece), ", pipetrain needs ", id));
    }
  }
  for (const std::string& tag : tag_pieces) {
    const int32_t id = model.PieceToId(tag);
    if (id < 0 || model.piece_type(id) != SentencePieceModel::PieceType::kUserDefined) {
      return absl::InternalError(
          absl::StrCat(tmp_model, ": language tag ", tag, " is not a user-defined piece"));
    }
  }
  summary.vocab_size = model.vocab_size();
  summary.model_path = absl::StrCat(out_dir, "/spm.model");
  summary.vocab_path = absl::StrCat(out_dir, "/spm.vocab");
  // The vocabulary listing first, the model last: a reader that finds
  // spm.model finds the matching spm.vocab.
  for (const auto& [from, to] : {std::pair{tmp_prefix + ".vocab", summary.vocab_path},
                                 std::pair{tmp_model, summary.model_path}}) {
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("renaming ", from, " to ", to, ": ", ec.message()));
  }
  summary.total_seconds = SecondsSince(start);
  return summary;
}

}  // namespace pipetrain
