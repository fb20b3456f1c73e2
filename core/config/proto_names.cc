#include "core/config/proto_names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"

namespace pipetrain::config_internal {
namespace {

namespace pb = google::protobuf;

// Optimal-string-alignment distance: a swap of two neighbours ("modle") is
// one edit, as it is one slip of the fingers.
int EditDistance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

}  // namespace

std::vector<std::string> FieldNames(const pb::Descriptor* message) {
  std::vector<std::string> names;
  for (int i = 0; i < message->field_count(); ++i) names.push_back(message->field(i)->name());
  return names;
}

std::string FieldNameList(const pb::Descriptor* message) {
  return absl::StrJoin(FieldNames(message), ", ");
}

std::string ClosestName(const std::string& name, const std::vector<std::string>& candidates) {
  const std::string lower = absl::AsciiStrToLower(name);
  std::string best;
  int best_distance = 0;
  for (const std::string& candidate : candidates) {
    const int d = EditDistance(lower, absl::AsciiStrToLower(candidate));
    if (best.empty() || d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  // A third of the length (at least 1, at most 3) separates typos from
  // unrelated names.
  const int allowed = std::clamp(static_cast<int>(name.size()) / 3, 1, 3);
  return best_distance <= allowed ? best : "";
}

std::string DidYouMean(const std::string& name, const std::vector<std::string>& candidates) {
  const std::string best = ClosestName(name, candidates);
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

}  // namespace pipetrain::config_internal
