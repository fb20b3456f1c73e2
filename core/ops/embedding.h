// Token embedding lookup, scaled: y[..., :] = scale · table[ids[...], :].
//
// ids are i32 of any shape, table is [V, d], y is [ids..., d]. An id outside
// [0, V) is an InvalidArgument error naming the id and its position.
#ifndef PIPETRAIN_CORE_OPS_EMBEDDING_H_
#define PIPETRAIN_CORE_OPS_EMBEDDING_H_

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace pipetrain::ops {

absl::StatusOr<Tensor> EmbeddingForward(const Tensor& ids, const Tensor& table, double scale);

// dtable[ids[i], :] += scale · dy[i, :]. Rows are visited in index order, so
// the sum is deterministic.
absl::Status EmbeddingBackwardWeight(const Tensor& ids, const Tensor& dy, double scale,
                                     Tensor& dtable);

// x[b, t, :] += sinusoidal position encoding of position t (sin on even,
// cos on odd features, base 10000). x is [B, T, d]. The backward is the identity.
absl::Status AddSinusoidalPositions(Tensor& x);

}  // namespace pipetrain::ops

#endif  // PIPETRAIN_CORE_OPS_EMBEDDING_H_
