// Progress of a long read on stderr (stdout is for results): done/total,
// rate and ETA, at most once a second, then one closing line.
#ifndef PIPETRAIN_CORE_DATA_PROGRESS_METER_H_
#define PIPETRAIN_CORE_DATA_PROGRESS_METER_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace pipetrain {

class ProgressMeter {
 public:
  // `what` names the units ("catalogs"); nothing is printed when !enabled.
  ProgressMeter(std::string what, int64_t total, bool enabled);

  void Update(int64_t done);
  // "[data] catalogs: 4066 in 3.1s (1312/s)".
  void Finish(int64_t done);
  double ElapsedSeconds() const;

 private:
  std::string what_;
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_PROGRESS_METER_H_
