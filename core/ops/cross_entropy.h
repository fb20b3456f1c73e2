// Label-smoothed cross-entropy over a vocabulary, ignoring padding targets.
//
// logits are [N, V], targets i32 [N]. With smoothing ε the target
// distribution is q = (1 − ε)·onehot(target) + ε/V, and the loss of a row is
// −Σ_v q_v · log softmax(logits)_v. Rows whose target equals `ignore_index`
// contribute nothing. Sums are returned, so the caller decides the
// normalisation (pipetrain divides by the tokens of the whole batch, across
// micro-batches, so splitting a batch does not change the gradient).
#ifndef PIPETRAIN_CORE_OPS_CROSS_ENTROPY_H_
#define PIPETRAIN_CORE_OPS_CROSS_ENTROPY_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::ops {

struct CrossEntropyStats {
  double loss_sum = 0.0;  // smoothed loss, summed over counted rows
  double nll_sum = 0.0;   // −log p(target), summed (for perplexity)
  int64_t tokens = 0;     // rows counted
  // Set when the sums were left on the device (`sums_on_device` below): f64
  // [N, 3] there, per row the loss, the nll and 1 when counted (0 for an
  // ignored row). The three fields above stay zero until ReadCrossEntropySums.
  Tensor rows;
};

struct CrossEntropySaved {
  Tensor logsumexp;  // [N]
};

// With `sums_on_device` and logits on a device (GPU or emulated), the
// per-row sums stay there (stats.rows) instead of being read back at once:
// a trainer reads every micro-batch's rows in one copy per step. On the CPU
// it changes nothing.
absl::StatusOr<CrossEntropyStats> CrossEntropyForward(const Tensor& logits, const Tensor& targets,
                                                      double smoothing, int32_t ignore_index,
                                                      CrossEntropySaved* saved,
                                                      bool sums_on_device = false);

// Fills the host sums of every entry that has device rows, with one
// device-to-host copy for all of them (their rows must share a device);
// each is summed in row order, the same additions the host path makes.
// Entries without rows are left as they are.
absl::Status ReadCrossEntropySums(const std::vector<CrossEntropyStats*>& stats);

// dlogits = grad_scale · ∂(loss_sum)/∂logits, written; zero rows for ignored targets.
absl::StatusOr<Tensor> CrossEntropyBackward(const Tensor& logits, const Tensor& targets,
                                            double smoothing, int32_t ignore_index,
                                            const CrossEntropySaved& saved, double grad_scale);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_CROSS_ENTROPY_H_
