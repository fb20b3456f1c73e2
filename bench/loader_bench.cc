// Data-loader benchmark: what a rank pays to start reading a corpus and to
// draw its batches. Opens the shards `pipetrain data shard` wrote (mapping
// and validating every token id), draws --steps steps as a trainer does, and
// Seeks back to the middle, printing ONE JSON line: open time, resident
// memory after open and at the end (VmRSS, VmHWM), steps/s, Seek time.
//
//   loader_bench --shards DIR [--steps 2000] [--max_tokens 4096] [--max_len 128]
//                [--min_pairs 1] [--seed 1]
//
// bench/run_data_bench.sh runs it on the 87-language corpus of the flagship
// configs after timing `data build`, `data vocab` and `data shard`.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "core/data/multilingual_loader.h"

ABSL_FLAG(std::string, shards, "", "shard directory written by pipetrain data shard");
ABSL_FLAG(int64_t, steps, 2000, "steps to draw");
ABSL_FLAG(int64_t, max_tokens, 4096, "padded tokens per step");
ABSL_FLAG(int32_t, max_len, 128, "most tokens per side");
ABSL_FLAG(int32_t, min_pairs, 1, "fewest pairs per step (micro-batches x replicas)");
ABSL_FLAG(uint64_t, seed, 1, "sampling seed");

namespace {

// A line of /proc/self/status in MiB ("VmRSS", "VmHWM"); -1 when absent.
double StatusMiB(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return -1;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_shards);
  if (dir.empty()) {
    std::fprintf(stderr, "loader_bench: --shards DIR is required\n");
    return 2;
  }
  pipetrain::LoaderOptions options;
  options.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  options.max_len = absl::GetFlag(FLAGS_max_len);
  options.min_pairs = absl::GetFlag(FLAGS_min_pairs);
  options.seed = absl::GetFlag(FLAGS_seed);
  const double rss_before = StatusMiB("VmRSS");
  auto start = std::chrono::steady_clock::now();
  auto loader = pipetrain::MultilingualLoader::Open(dir, options);
  if (!loader.ok()) {
    std::fprintf(stderr, "loader_bench: %s\n", loader.status().ToString().c_str());
    return 1;
  }
  const double open_s = SecondsSince(start);
  const double rss_open = StatusMiB("VmRSS");
  const int64_t steps = absl::GetFlag(FLAGS_steps);
  int64_t pairs = 0;
  pipetrain::LoaderCursor middle;
  start = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    if (s == steps / 2) middle = (*loader)->cursor();
    auto drawn = (*loader)->NextStepPairs();
    if (!drawn.ok()) {
      std::fprintf(stderr, "loader_bench: %s\n", drawn.status().ToString().c_str());
      return 1;
    }
    pairs += static_cast<int64_t>(drawn->size());
  }
  const double draw_s = SecondsSince(start);
  start = std::chrono::steady_clock::now();
  if (const auto sought = (*loader)->Seek(middle); !sought.ok()) {
    std::fprintf(stderr, "loader_bench: %s\n", sought.ToString().c_str());
    return 1;
  }
  const double seek_s = SecondsSince(start);
  absl::PrintF(
      "{\"bench\":\"loader\",\"shards\":\"%s\",\"languages\":%d,\"directions\":%d,"
      "\"open_s\":%.3f,\"rss_before_mb\":%.1f,\"rss_after_open_mb\":%.1f,\"steps\":%d,"
      "\"steps_per_s\":%.1f,\"pairs_per_step\":%.1f,\"seek_to_step\":%d,\"seek_s\":%.3f,"
      "\"rss_end_mb\":%.1f,\"peak_rss_mb\":%.1f}\n",
      dir, (*loader)->languages().size(), (*loader)->directions().size(), open_s, rss_before,
      rss_open, steps, steps / std::max(draw_s, 1e-9),
      static_cast<double>(pairs) / std::max<int64_t>(steps, 1), steps / 2, seek_s,
      StatusMiB("VmRSS"), StatusMiB("VmHWM"));
  return 0;
}
