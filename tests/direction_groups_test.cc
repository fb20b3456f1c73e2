// The direction groups of many-to-many validation and their seeded sample.
#include "launcher/trainer/direction_groups.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pipetrain {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::pair<std::string, std::string>> AllDirections(
    const std::vector<std::string>& languages) {
  std::vector<std::pair<std::string, std::string>> all;
  for (const std::string& a : languages) {
    for (const std::string& b : languages) {
      if (a != b) all.push_back({a, b});
    }
  }
  return all;
}

TEST(DirectionGroupsTest, GroupsAreFormedAroundThePivot) {
  EXPECT_EQ(GroupOf("en", "de", "en"), DirectionGroup::kFromPivot);
  EXPECT_EQ(GroupOf("de", "en", "en"), DirectionGroup::kToPivot);
  EXPECT_EQ(GroupOf("de", "fr", "en"), DirectionGroup::kBetweenOthers);
  EXPECT_EQ(DirectionGroupName(DirectionGroup::kFromPivot, "en"), "en-x");
  EXPECT_EQ(DirectionGroupName(DirectionGroup::kToPivot, "fr"), "x-fr");
  ASSERT_TRUE(ParseDirectionGroups("all", "en").ok());
  EXPECT_EQ(ParseDirectionGroups("all", "en")->size(), 3u);
  EXPECT_THAT(*ParseDirectionGroups("x-en", "en"), ElementsAre(DirectionGroup::kToPivot));
  EXPECT_FALSE(NamesDirectionGroups("en-de", "en"));
  EXPECT_THAT(std::string(ParseDirectionGroups("x-z", "en").status().message()),
              HasSubstr("en-x, x-en, x-y or all"));
}

TEST(DirectionGroupsTest, TheSampleIsSeededAndIndependentOfOrder) {
  const std::vector<std::string> languages = {"en",    "de", "fr", "es", "ru", "ja",
                                              "zh_CN", "ar", "uk", "pt", "it", "nl"};
  auto all = AllDirections(languages);
  const std::vector<DirectionGroup> groups = {DirectionGroup::kFromPivot, DirectionGroup::kToPivot,
                                              DirectionGroup::kBetweenOthers};
  const std::vector<std::string> a = SampleDirections(all, groups, 4, "en", 1);
  ASSERT_EQ(a.size(), 12u);
  // Four of each group, in group order.
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(a[i].rfind("en-", 0), 0u) << a[i];
  for (size_t i = 4; i < 8; ++i) EXPECT_EQ(a[i].substr(a[i].size() - 3), "-en") << a[i];
  for (size_t i = 8; i < 12; ++i) EXPECT_EQ(a[i].find("en"), std::string::npos) << a[i];
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), 12u);
  // The same for the directions given in another order; another seed differs.
  std::reverse(all.begin(), all.end());
  EXPECT_EQ(SampleDirections(all, groups, 4, "en", 1), a);
  EXPECT_NE(SampleDirections(all, groups, 4, "en", 2), a);
  // A group smaller than the sample gives all it has.
  EXPECT_EQ(SampleDirections({{"en", "de"}, {"de", "fr"}}, groups, 4, "en", 1),
            (std::vector<std::string>{"en-de", "de-fr"}));
}

}  // namespace
}  // namespace pipetrain
