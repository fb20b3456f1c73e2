#include "core/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace pipetrain {

double LearningRate(const TrainConfig& config, int64_t update) {
  const double peak = config.lr();
  const int64_t warmup = config.warmup_steps();
  const double u = static_cast<double>(std::max<int64_t>(update, 1));
  if (warmup > 0 && update <= warmup) return peak * u / static_cast<double>(warmup);
  switch (config.lr_schedule()) {
    case COSINE: {
      const double span = static_cast<double>(std::max<int64_t>(config.steps() - warmup, 1));
      const double progress = std::min((u - static_cast<double>(warmup)) / span, 1.0);
      return config.min_lr() + (peak - config.min_lr()) * 0.5 * (1.0 + std::cos(M_PI * progress));
    }
    case CONSTANT:
      return peak;
    default:
      return peak * std::sqrt(static_cast<double>(std::max<int64_t>(warmup, 1)) / u);
  }
}

}  // namespace pipetrain
