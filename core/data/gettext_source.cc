#include "core/data/gettext_source.h"

#include <iconv.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/language_codes.h"
#include "core/data/mo_reader.h"
#include "core/data/plural_forms.h"
#include "core/data/progress_meter.h"
#include "core/util/log.h"

namespace pipetrain {
namespace {

namespace fs = std::filesystem;

// The counts whose plural form pairs with English's singular and plural.
constexpr uint64_t kSingularCount = 1;
constexpr uint64_t kPluralCount = 5;

// Catalogs in a legacy charset (ISO-8859-x, EUC-JP, KOI8-R: about 100 on a
// Debian machine) are converted with the C library's iconv.
class Converter {
 public:
  // An identity converter for UTF-8 (and its subset ASCII); nullopt when the
  // C library does not know the charset.
  static std::optional<Converter> For(const std::string& charset) {
    std::string folded;
    for (char c : charset) {
      if (c != '-' && c != '_') {
        folded.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      }
    }
    // "CHARSET" is the placeholder of an untouched template: ASCII in practice.
    if (folded.empty() || folded == "utf8" || folded == "ascii" || folded == "usascii" ||
        folded == "charset") {
      return Converter(nullptr);
    }
    iconv_t cd = iconv_open("UTF-8", charset.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
    return Converter(cd);
  }
  Converter(Converter&& other) noexcept : cd_(other.cd_) { other.cd_ = nullptr; }
  Converter& operator=(Converter&&) = delete;
  ~Converter() {
    if (cd_ != nullptr) iconv_close(cd_);
  }

  // False when `in` is not valid in the charset.
  bool Convert(std::string_view in, std::string* out) {
    if (cd_ == nullptr) {
      out->assign(in);
      return true;
    }
    iconv(cd_, nullptr, nullptr, nullptr, nullptr);  // a fresh shift state per string
    out->assign(in.size() * 4 + 8, '\0');
    char* src = const_cast<char*>(in.data());
    size_t src_left = in.size();
    char* dst = out->data();
    size_t dst_left = out->size();
    while (src_left > 0) {
      if (iconv(cd_, &src, &src_left, &dst, &dst_left) == static_cast<size_t>(-1)) {
        if (errno != E2BIG) return false;
        const size_t used = out->size() - dst_left;
        out->resize(out->size() * 2);
        dst = out->data() + used;
        dst_left = out->size() - used;
      }
    }
    out->resize(out->size() - dst_left);
    return true;
  }

 private:
  explicit Converter(iconv_t cd) : cd_(cd) {}
  iconv_t cd_;
};

struct Locale {
  std::string dir;
  LanguageCode code;
  std::vector<std::string> catalogs;  // paths, sorted
};

absl::StatusOr<std::vector<Locale>> ListLocales(const std::string& root, bool verbose,
                                                CorpusBuilder* builder, GettextSummary* summary) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat(root,
                                            " is not a directory (expected a locale tree "
                                            "such as /usr/share/locale)"));
  }
  std::vector<std::string> names;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat("cannot list ", root, ": ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  std::vector<Locale> locales;
  std::vector<std::string> english;
  const std::string tree = fs::weakly_canonical(root, ec).string() + "/";
  for (const std::string& name : names) {
    const fs::path messages = fs::path(root) / name / "LC_MESSAGES";
    if (!fs::is_directory(messages, ec)) continue;  // locale.alias, LC_TIME-only locales
    auto code = NormalizeLanguageCode(name);
    if (!code.ok()) {
      LogWarning("data", "skipping locale directory %s: %s", (fs::path(root) / name).string(),
                 std::string(code.status().message()));
      builder->Count("locales.not_a_language_code");
      ++summary->locales_skipped;
      continue;
    }
    if (PrimaryLanguage(code->code) == "en") {
      english.push_back(name);
      builder->Count("locales.english_variant");
      ++summary->locales_skipped;
      continue;
    }
    Locale locale{name, *code, {}};
    std::vector<fs::path> files;
    for (fs::directory_iterator it(messages, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".mo" && it->is_regular_file(ec)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      // iso-codes links old domain names to new ones (iso_3166.mo →
      // iso_3166-1.mo). A link into the tree is skipped: its target is read
      // where it lives, under its own domain name and locale.
      if (fs::is_symlink(file, ec)) {
        const std::string target = fs::weakly_canonical(file, ec).string();
        if (!ec && target.rfind(tree, 0) == 0) {
          builder->Count("catalogs.links_within_tree");
          continue;
        }
      }
      locale.catalogs.push_back(file.string());
    }
    if (!locale.catalogs.empty()) locales.push_back(std::move(locale));
  }
  if (!english.empty() && verbose) {
    // stderr, with the progress: stdout carries the results.
    std::fprintf(stderr, "[data] English locales skipped (English is the msgid side): %s\n",
                 absl::StrJoin(english, " ").c_str());
  }
  return locales;
}

// One message of a catalog entry: the English pivot and the msgstr form
// that translates it.
struct Variant {
  std::string_view english;
  size_t form = 0;
  char tag = 0;  // 0: not plural; '1': the singular; 'n': the plural
};

class CatalogReader {
 public:
  CatalogReader(const GettextOptions& options, CorpusBuilder* builder, GettextSummary* summary)
      : options_(options),
        builder_(builder),
        summary_(summary),
        english_(builder->Language("en")) {}

  void Read(const std::string& path, CorpusBuilder::LangId lang, int rank) {
    auto catalog = ReadMoFile(path);
    if (!catalog.ok()) {
      LogWarning("data", "skipping catalog: %s", std::string(catalog.status().message()));
      Failed("catalogs.unreadable");
      return;
    }
    const std::string charset = MoCharset(catalog->header);
    auto converter = Converter::For(charset);
    if (!converter) {
      LogWarning("data", "skipping catalog %s: charset '%s' unknown to iconv", path, charset);
      Failed("catalogs.unknown_charset");
      return;
    }
    const std::string plural_header = MoHeaderField(catalog->header, "Plural-Forms");
    std::optional<PluralForms> plural;
    if (plural_header.empty()) {
      plural = PluralForms::Germanic();
    } else if (auto parsed = PluralForms::Parse(plural_header); parsed.ok()) {
      plural = *std::move(parsed);
    } else {
      LogWarning("data", "%s: %s; its plural entries are skipped", path,
                 std::string(parsed.status().message()));
      builder_->Count("catalogs.bad_plural_forms");
    }
    ++summary_->catalogs;
    const std::string domain = fs::path(path).stem().string();
    for (const MoEntry& entry : catalog->entries) {
      Variant variants[2];
      int num_variants = 0;
      if (!entry.plural) {
        variants[num_variants++] = {entry.msgid, 0, 0};
      } else if (!plural) {
        builder_->Count("translation.plural_without_formula");
        continue;
      } else {
        auto one = plural->FormFor(kSingularCount), many = plural->FormFor(kPluralCount);
        if (!one.ok() || !many.ok()) {
          builder_->Count("translation.plural_formula_failed");
          continue;
        }
        variants[num_variants++] = {entry.msgid, static_cast<size_t>(*one), '1'};
        variants[num_variants++] = {entry.msgid_plural, static_cast<size_t>(*many), 'n'};
      }
      for (int v = 0; v < num_variants; ++v) {
        AddVariant(*converter, domain, entry, variants[v], lang, rank);
      }
    }
  }

 private:
  void Failed(std::string_view counter) {
    builder_->Count(counter);
    ++summary_->catalogs_failed;
  }

  void AddVariant(Converter& converter, const std::string& domain, const MoEntry& entry,
                  const Variant& variant, CorpusBuilder::LangId lang, int rank) {
    ++summary_->entries;
    if (variant.form >= entry.msgstr.size()) {
      builder_->Count("translation.missing_plural_form");
      return;
    }
    // One message per (domain, context, msgid[, msgid_plural, form]).
    key_.assign(domain);
    key_.push_back('\x1f');
    if (entry.has_context) key_.append(entry.context).push_back('\x04');
    key_.push_back('\x1f');
    key_.append(entry.msgid);
    if (entry.plural) {
      key_.push_back('\0');
      key_.append(entry.msgid_plural).push_back('\0');
      key_.push_back(variant.tag);
    }

    uint32_t message;
    if (auto it = messages_.find(key_); it != messages_.end()) {
      message = it->second;
    } else {
      message = NewMessage(converter, variant.english);
      messages_.emplace(key_, message);
    }
    if (message == CorpusBuilder::kNoMessage) {
      builder_->Count("translation.english_rejected");
      return;
    }
    if (!converter.Convert(entry.msgstr[variant.form], &converted_)) {
      builder_->Count("translation.bad_encoding");
      return;
    }
    const std::string_view text = TrimText(converted_);
    if (const TextIssue issue = CheckText(text, options_.filters); issue != TextIssue::kNone) {
      builder_->Count(absl::StrCat("translation.", IssueName(issue)));
      return;
    }
    const PairIssue issue = CheckPair(builder_->PivotText(message), text, options_.filters);
    if (issue != PairIssue::kNone) {
      builder_->Count(absl::StrCat("translation.", IssueName(issue)));
      return;
    }
    if (builder_->AddTranslation(message, lang, rank, text)) ++summary_->translations;
  }

  // The message of an English source seen for the first time, or kNoMessage
  // when the English itself is unusable (counted once per message).
  uint32_t NewMessage(Converter& converter, std::string_view raw_english) {
    std::string english;
    if (!converter.Convert(raw_english, &english)) {
      builder_->Count("english.bad_encoding");
      return CorpusBuilder::kNoMessage;
    }
    const std::string_view text = TrimText(english);
    if (const TextIssue issue = CheckText(text, options_.filters); issue != TextIssue::kNone) {
      builder_->Count(absl::StrCat("english.", IssueName(issue)));
      return CorpusBuilder::kNoMessage;
    }
    builder_->Count("english.messages");
    return builder_->AddMessage(english_, text);
  }

  const GettextOptions& options_;
  CorpusBuilder* builder_;
  GettextSummary* summary_;
  const CorpusBuilder::LangId english_;
  std::unordered_map<std::string, uint32_t> messages_;
  std::string key_, converted_;
};

}  // namespace

absl::StatusOr<GettextSummary> AddGettextTree(const std::string& root,
                                              const GettextOptions& options,
                                              CorpusBuilder* builder) {
  GettextSummary summary;
  auto locales = ListLocales(root, options.progress, builder, &summary);
  if (!locales.ok()) return locales.status();
  int64_t total = 0;
  for (const Locale& l : *locales) total += static_cast<int64_t>(l.catalogs.size());
  if (total == 0) {
    return absl::NotFoundError(
        absl::StrCat("no gettext catalogs under ", root, "/<locale>/LC_MESSAGES/*.mo"));
  }
  builder->Language("en");
  CatalogReader reader(options, builder, &summary);
  ProgressMeter progress("catalogs", total, options.progress);
  int64_t done = 0;
  for (const Locale& locale : *locales) {
    const CorpusBuilder::LangId lang = builder->Language(locale.code.code);
    builder->NoteSource(lang, locale.dir);
    ++summary.locales;
    for (const std::string& path : locale.catalogs) {
      reader.Read(path, lang, locale.code.rank);
      progress.Update(++done);
    }
  }
  progress.Finish(done);
  builder->Count("read.catalogs", summary.catalogs);
  builder->Count("read.catalogs_failed", summary.catalogs_failed);
  builder->Count("read.locales", summary.locales);
  builder->Count("read.entries", summary.entries);
  builder->Count("read.translations_kept", summary.translations);
  return summary;
}

}  // namespace pipetrain
