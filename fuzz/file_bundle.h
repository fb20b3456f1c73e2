// Several files in one fuzz input, for readers that open a directory (token
// shards, a checkpoint step). The input is a sequence of records, each a
// little-endian uint32 length followed by that many bytes; record i is the
// contents of the target's i-th file name. A length past the end takes what
// is left; records missing at the end are files that do not exist. The
// format is as dumb as possible so that libFuzzer's byte mutations keep
// most of an input's files intact while they change one.
//
// fuzz/make_seeds.sh writes bundles from real directories.
#ifndef PIPETRAIN_FUZZ_FILE_BUNDLE_H_
#define PIPETRAIN_FUZZ_FILE_BUNDLE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace pipetrain::fuzz {

// One entry per record found, at most `max_files`.
std::vector<std::string_view> SplitBundle(const uint8_t* data, size_t size, size_t max_files);

}  // namespace pipetrain::fuzz

#endif  // PIPETRAIN_FUZZ_FILE_BUNDLE_H_
