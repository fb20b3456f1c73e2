// The groups a many-to-many model is reported by, as DeepNet's M2M table
// groups its 7,482 directions: out of the pivot language (en→X), into it
// (X→en), and between two others (X→Y). With thousands of directions only a
// sample can be decoded at every validation: a fixed, seeded one, so every
// validation of a run (and `pipetrain eval` with the same seed) scores the
// same directions.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_DIRECTION_GROUPS_H_
#define PIPETRAIN_LAUNCHER_TRAINER_DIRECTION_GROUPS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace pipetrain {

enum class DirectionGroup { kFromPivot, kToPivot, kBetweenOthers };

// "en-x", "x-en", "x-y" for pivot "en".
std::string DirectionGroupName(DirectionGroup group, const std::string& pivot);
DirectionGroup GroupOf(const std::string& src, const std::string& tgt, const std::string& pivot);
// The groups a user names: "en-x", "x-en", "x-y" (for pivot en) or "all".
// Error (naming what is accepted) for any other word.
absl::StatusOr<std::vector<DirectionGroup>> ParseDirectionGroups(const std::string& text,
                                                                 const std::string& pivot);
// True when `text` names groups rather than directions.
bool NamesDirectionGroups(const std::string& text, const std::string& pivot);

// Up to `per_group` directions ("src-tgt") of each of `groups` among
// `available` (src, tgt): those whose seeded hash of the name is smallest,
// so the choice depends only on the seed and on which directions exist,
// never on their order. Listed group by group, each sorted by name.
std::vector<std::string> SampleDirections(
    const std::vector<std::pair<std::string, std::string>>& available,
    const std::vector<DirectionGroup>& groups, int per_group, const std::string& pivot,
    uint64_t seed);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_DIRECTION_GROUPS_H_
