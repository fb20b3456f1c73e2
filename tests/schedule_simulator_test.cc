#include "parallel/schedule_simulator.h"

#include <cstdio>

#include "gtest/gtest.h"
#include "parallel/schedule.h"

namespace pipetrain {
namespace {

TEST(Explore, Print) {
  for (int p : {1, 2, 3, 4, 8}) {
    for (int v : {1, 2, 3, 4}) {
      for (int m = 1; m <= 16; ++m) {
        for (ScheduleKind kind :
             {ScheduleKind::kGpipe, ScheduleKind::k1F1B, ScheduleKind::kInterleaved1F1B}) {
          auto s = BuildSchedule(kind, p, m, v);
          if (!s.ok()) continue;
          SimulationCosts costs;
          costs.compute = {1, 2, 0};
          auto r = SimulateSchedule(*s, costs);
          if (!r.ok()) {
            printf("%s p%d m%d v%d: %s\n", ScheduleKindName(kind), p, m, v,
                   std::string(r.status().message()).c_str());
            continue;
          }
          double expect = double(p - 1) / (v * m + p - 1);
          costs.compute = {1, 1, 1};
          auto split = SimulateSchedule(*s, costs);
          if (p == 4 && (m == 4 || m == 8))
            printf("%s p%d m%d v%d split bubble %g fused %g peaks %d %d %d %d\n", ScheduleKindName(kind), p, m, v,
                   split->ranks[0].bubble_fraction, expect, r->ranks[0].peak_live_activations,
                   r->ranks[1].peak_live_activations, r->ranks[2].peak_live_activations,
                   r->ranks[3].peak_live_activations);
          for (int rr = 0; rr < p; ++rr) {
            if (std::abs(r->ranks[rr].bubble_fraction - expect) > 1e-12)
              printf("%s p%d m%d v%d rank%d bubble %g expect %g peak %d\n", ScheduleKindName(kind),
                     p, m, v, rr, r->ranks[rr].bubble_fraction, expect,
                     r->ranks[rr].peak_live_activations);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace pipetrain
