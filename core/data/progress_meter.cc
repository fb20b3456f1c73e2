#include "core/data/progress_meter.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

namespace pipetrain {

ProgressMeter::ProgressMeter(std::string what, int64_t total, bool enabled)
    : what_(std::move(what)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

double ProgressMeter::ElapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressMeter::Update(int64_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::seconds(1)) return;
  last_ = now;
  const double elapsed = ElapsedSeconds();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
  std::fprintf(stderr, "[data] %s %lld/%lld (%.0f%%), %.0f/s, ETA %.0fs\n", what_.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_),
               total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0,
               rate, eta);
}

void ProgressMeter::Finish(int64_t done) {
  if (!enabled_) return;
  const double elapsed = ElapsedSeconds();
  std::fprintf(stderr, "[data] %s: %lld in %.1fs (%.0f/s)\n", what_.c_str(),
               static_cast<long long>(done), elapsed,
               elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0);
}

}  // namespace pipetrain
