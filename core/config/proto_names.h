// Name lists and "did you mean" suggestions over protobuf descriptors, shared
// by the text-format error hints and the --set path resolver so that both
// answer a typo the same way. Enum values: core/config/enum_spelling.h.
#ifndef PIPETRAIN_CORE_CONFIG_PROTO_NAMES_H_
#define PIPETRAIN_CORE_CONFIG_PROTO_NAMES_H_

#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"

namespace pipetrain::config_internal {

// "a, b, c": the message's field names in declaration order.
std::string FieldNameList(const google::protobuf::Descriptor* message);

// The candidate closest to `name` (case-insensitive edit distance), or "" when
// none is close enough to be a plausible typo.
std::string ClosestName(const std::string& name, const std::vector<std::string>& candidates);

std::vector<std::string> FieldNames(const google::protobuf::Descriptor* message);

// " (did you mean 'x'?)" or "" when nothing is close.
std::string DidYouMean(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace pipetrain::config_internal

#endif  // PIPETRAIN_CORE_CONFIG_PROTO_NAMES_H_
