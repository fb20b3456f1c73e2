#include "launcher/trainer/direction_groups.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "models/parameter_store.h"

namespace pipetrain {

std::string DirectionGroupName(DirectionGroup group, const std::string& pivot) {
  switch (group) {
    case DirectionGroup::kFromPivot:
      return absl::StrCat(pivot, "-x");
    case DirectionGroup::kToPivot:
      return absl::StrCat("x-", pivot);
    case DirectionGroup::kBetweenOthers:
      return "x-y";
  }
  return "?";
}

DirectionGroup GroupOf(const std::string& src, const std::string& tgt, const std::string& pivot) {
  if (src == pivot) return DirectionGroup::kFromPivot;
  if (tgt == pivot) return DirectionGroup::kToPivot;
  return DirectionGroup::kBetweenOthers;
}

bool NamesDirectionGroups(const std::string& text, const std::string& pivot) {
  return ParseDirectionGroups(text, pivot).ok();
}

absl::StatusOr<std::vector<DirectionGroup>> ParseDirectionGroups(const std::string& text,
                                                                 const std::string& pivot) {
  const std::vector<DirectionGroup> all = {DirectionGroup::kFromPivot, DirectionGroup::kToPivot,
                                           DirectionGroup::kBetweenOthers};
  if (text == "all") return all;
  for (DirectionGroup group : all) {
    if (text == DirectionGroupName(group, pivot)) return std::vector<DirectionGroup>{group};
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'", text, "' is not a direction group: use ", DirectionGroupName(all[0], pivot), ", ",
      DirectionGroupName(all[1], pivot), ", x-y or all (or list directions as src-tgt,...)"));
}

std::vector<std::string> SampleDirections(
    const std::vector<std::pair<std::string, std::string>>& available,
    const std::vector<DirectionGroup>& groups, int per_group, const std::string& pivot,
    uint64_t seed) {
  std::vector<std::string> chosen;
  for (DirectionGroup group : groups) {
    std::vector<std::pair<uint64_t, std::string>> ranked;
    for (const auto& [src, tgt] : available) {
      if (GroupOf(src, tgt, pivot) != group) continue;
      const std::string name = absl::StrCat(src, "-", tgt);
      const uint64_t key = Fnv1a64(&seed, sizeof(seed), Fnv1a64(name.data(), name.size()));
      ranked.push_back({key, name});
    }
    std::sort(ranked.begin(), ranked.end());
    std::vector<std::string> names;
    for (size_t i = 0; i < ranked.size() && static_cast<int>(i) < per_group; ++i) {
      names.push_back(ranked[i].second);
    }
    std::sort(names.begin(), names.end());
    chosen.insert(chosen.end(), names.begin(), names.end());
  }
  return chosen;
}

}  // namespace pipetrain
