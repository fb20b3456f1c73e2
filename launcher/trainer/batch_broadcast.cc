#include "launcher/trainer/batch_broadcast.h"

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

// The tensors of a batch, in the order they travel.
constexpr int kTensorsPerBatch = 5;
std::array<Tensor*, kTensorsPerBatch> Fields(Batch& b) {
  return {&b.src_ids, &b.src_lengths, &b.tgt_in, &b.tgt_lengths, &b.labels};
}

// Header layout (f64, exact for any count below 2^53): target tokens, source
// tokens, sentences, then per micro-batch and field: 1 + its rank (0 when
// the field is undefined), dim 0, dim 1.
constexpr int kCountSlots = 3;
constexpr int kSlotsPerField = 3;

}  // namespace

absl::Status BroadcastStepBatches(Communicator& pipeline, int root, int microbatches,
                                  std::vector<Batch>* batches, StepMetrics* counts) {
  const bool sender = pipeline.rank() == root;
  if (sender && static_cast<int>(batches->size()) != microbatches) {
    return absl::InternalError(absl::StrCat("BroadcastStepBatches: ", batches->size(),
                                            " batches drawn, ", microbatches, " expected"));
  }
  const int64_t header_slots =
      kCountSlots + int64_t{microbatches} * kTensorsPerBatch * kSlotsPerField;
  Tensor header = Tensor::Zeros({header_slots}, DType::kF64);
  double* h = header.data<double>();
  int64_t payload = 0;
  if (sender) {
    h[0] = static_cast<double>(counts->target_tokens);
    h[1] = static_cast<double>(counts->source_tokens);
    h[2] = counts->sentences;
    double* slot = h + kCountSlots;
    for (Batch& b : *batches) {
      for (Tensor* t : Fields(b)) {
        if (t->defined()) {
          if (t->dtype() != DType::kI32 || t->rank() > 2 || t->device() != Device::kCpu) {
            return absl::InternalError(absl::StrCat(
                "BroadcastStepBatches: a batch tensor is not a host i32 tensor of rank <= 2 (",
                ShapeString(t->shape()), ")"));
          }
          slot[0] = 1 + t->rank();
          slot[1] = t->rank() > 0 ? t->shape()[0] : 1;
          slot[2] = t->rank() > 1 ? t->shape()[1] : 1;
          payload += t->numel();
        }
        slot += kSlotsPerField;
      }
    }
  }
  PT_RETURN_IF_ERROR(pipeline.Broadcast(header, root));

  if (!sender) {
    counts->target_tokens = static_cast<int64_t>(h[0]);
    counts->source_tokens = static_cast<int64_t>(h[1]);
    counts->sentences = static_cast<int>(h[2]);
    batches->assign(microbatches, Batch{});
    const double* slot = h + kCountSlots;
    for (Batch& b : *batches) {
      for (Tensor* t : Fields(b)) {
        const int rank = static_cast<int>(slot[0]) - 1;
        if (rank >= 0) {
          Shape shape;
          for (int d = 0; d < rank; ++d) shape.push_back(static_cast<int64_t>(slot[1 + d]));
          *t = Tensor::Empty(shape, DType::kI32);
          payload += t->numel();
        }
        slot += kSlotsPerField;
      }
    }
  }

  // Every id in one block: packed by the sender, unpacked by the others.
  Tensor block = Tensor::Empty({payload}, DType::kI32);
  int32_t* cursor = block.data<int32_t>();
  if (sender) {
    for (Batch& b : *batches) {
      for (Tensor* t : Fields(b)) {
        if (!t->defined()) continue;
        std::memcpy(cursor, t->data<int32_t>(), t->nbytes());
        cursor += t->numel();
      }
    }
  }
  PT_RETURN_IF_ERROR(pipeline.Broadcast(block, root));
  if (!sender) {
    for (Batch& b : *batches) {
      for (Tensor* t : Fields(b)) {
        if (!t->defined()) continue;
        std::memcpy(t->data<int32_t>(), cursor, t->nbytes());
        cursor += t->numel();
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
