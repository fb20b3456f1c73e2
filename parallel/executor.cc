#include "parallel/executor.h"

#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

using Key = std::pair<int, int>;  // (micro-batch, local chunk)

struct PendingRecv {
  BoundaryTensors buffers;
  std::vector<std::unique_ptr<CommRequest>> requests;
};

class Run {
 public:
  Run(PipelineStage& stage, Communicator& comm, int chunks)
      : stage_(stage), comm_(comm), p_(comm.size()), v_(chunks) {}

  absl::Status Do(const Action& a) {
    const Key key{a.microbatch, a.chunk};
    const int vs = a.chunk * p_ + comm_.rank();  // this action's virtual stage
    switch (a.type) {
      case ActionType::kRecvForward:
        return PostRecv(stage_.ForwardInputBuffers(a.microbatch, a.chunk), a, vs - 1, false,
                        &forward_in_[key]);
      case ActionType::kRecvBackward:
        return PostRecv(stage_.OutputGradBuffers(a.microbatch, a.chunk), a, vs, true,
                        &backward_in_[key]);
      case ActionType::kForward: {
        PT_ASSIGN_OR_RETURN(BoundaryTensors input, Take(&forward_in_, key));
        PT_ASSIGN_OR_RETURN(forward_out_[key], stage_.Forward(a.microbatch, a.chunk, input));
        return absl::OkStatus();
      }
      case ActionType::kBackward: {
        PT_ASSIGN_OR_RETURN(BoundaryTensors grad, Take(&backward_in_, key));
        PT_ASSIGN_OR_RETURN(backward_out_[key], stage_.BackwardInput(a.microbatch, a.chunk, grad));
        return absl::OkStatus();
      }
      case ActionType::kWeight:
        return stage_.BackwardWeight(a.microbatch, a.chunk);
      case ActionType::kSendForward:
        return Send(&forward_out_, key, a, vs, false);
      case ActionType::kSendBackward:
        return Send(&backward_out_, key, a, vs - 1, true);
    }
    return absl::InternalError("unknown action type");
  }

  absl::Status Finish() {
    for (auto& request : sends_) PT_RETURN_IF_ERROR(request->Wait());
    sends_.clear();
    if (!forward_in_.empty() || !backward_in_.empty()) {
      return absl::InternalError(
          "the schedule received tensors it never used; the action list is inconsistent");
    }
    return absl::OkStatus();
  }

  ExecutorStats stats;

 private:
  absl::Status PostRecv(BoundaryTensors buffers, const Action& a, int boundary, bool backward,
                        PendingRecv* pending) {
    pending->buffers = std::move(buffers);
    Tensor* parts[2] = {&pending->buffers.hidden, &pending->buffers.memory};
    for (int i = 0; i < 2; ++i) {
      if (!parts[i]->defined()) continue;
      PT_ASSIGN_OR_RETURN(auto request,
                          comm_.Irecv(*parts[i], a.peer,
                                      BoundaryTag(a.microbatch, boundary, backward, i, p_ * v_)));
      stats.bytes_received += static_cast<int64_t>(parts[i]->nbytes());
      pending->requests.push_back(std::move(request));
    }
    return absl::OkStatus();
  }

  // The received tensors of `key` (waiting for them), or nothing when the
  // schedule has no receive for it (first or last virtual stage).
  absl::StatusOr<BoundaryTensors> Take(std::map<Key, PendingRecv>* pending, const Key& key) {
    auto it = pending->find(key);
    if (it == pending->end()) return BoundaryTensors{};
    for (auto& request : it->second.requests) PT_RETURN_IF_ERROR(request->Wait());
    BoundaryTensors out = std::move(it->second.buffers);
    pending->erase(it);
    return out;
  }

  absl::Status Send(std::map<Key, BoundaryTensors>* ready, const Key& key, const Action& a,
                    int boundary, bool backward) {
    auto it = ready->find(key);
    if (it == ready->end()) {
      return absl::InternalError(absl::StrCat("rank ", comm_.rank(), ": ", FormatAction(a),
                                              " comes before the computation it sends"));
    }
    const Tensor* parts[2] = {&it->second.hidden, &it->second.memory};
    for (int i = 0; i < 2; ++i) {
      if (!parts[i]->defined()) continue;
      PT_ASSIGN_OR_RETURN(auto request,
                          comm_.Isend(*parts[i], a.peer,
                                      BoundaryTag(a.microbatch, boundary, backward, i, p_ * v_)));
      stats.bytes_sent += static_cast<int64_t>(parts[i]->nbytes());
      sends_.push_back(std::move(request));
    }
    ready->erase(it);  // the requests keep the storage alive until sent
    return absl::OkStatus();
  }

  PipelineStage& stage_;
  Communicator& comm_;
  const int p_, v_;
  std::map<Key, PendingRecv> forward_in_, backward_in_;
  std::map<Key, BoundaryTensors> forward_out_, backward_out_;
  std::vector<std::unique_ptr<CommRequest>> sends_;
};

}  // namespace

int BoundaryTag(int microbatch, int boundary, bool backward, int tensor, int virtual_stages) {
  const int64_t tag =
      ((static_cast<int64_t>(microbatch) * virtual_stages + boundary) * 2 + (backward ? 1 : 0)) *
          2 +
      tensor;
  // MPI guarantees tags up to 32767. Wrapping aliases only messages
  // 32768 / (4 · virtual stages) micro-batches apart; a schedule has at most
  // about p micro-batches in flight between two ranks.
  return static_cast<int>(tag % 32768);
}

absl::StatusOr<ExecutorStats> ExecuteActions(const std::vector<Action>& actions,
                                             PipelineStage& stage, Communicator& pipeline,
                                             int chunks) {
  Run run(stage, pipeline, chunks);
  for (const Action& action : actions) {
    absl::Status status = run.Do(action);
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("rank ", pipeline.rank(), " at ", FormatAction(action), ": ",
                                       status.message()));
    }
  }
  PT_RETURN_IF_ERROR(run.Finish());
  return run.stats;
}

}  // namespace pipetrain
