// Action: one step of a pipeline schedule on one rank — compute a micro-batch
// on one of the rank's chunks (F, B, W), or move its boundary tensors to or
// from a neighbouring rank (SEND_F, RECV_F, SEND_B, RECV_B).
//
// Text form (compact, printable, parsed back by ParseAction):
//   F3c1          forward of micro-batch 3 on this rank's chunk 1
//   B3c1, W3c1    input-gradient and weight-gradient halves of its backward
//   SEND_F3c1>2   send chunk 1's forward output of micro-batch 3 to rank 2
//   RECV_F3c1<0   receive chunk 1's forward input of micro-batch 3 from rank 0
//   SEND_B3c1>0   send chunk 1's input gradient of micro-batch 3 to rank 0
//   RECV_B3c1<2   receive chunk 1's output gradient of micro-batch 3 from rank 2
// The chunk is always the local chunk of the rank that runs the action, so a
// SEND and its RECV name different chunks when the two virtual stages sit in
// different chunk slots (interleaving wraps from rank p−1 chunk c to rank 0
// chunk c+1).
#ifndef PIPETRAIN_PARALLEL_ACTION_H_
#define PIPETRAIN_PARALLEL_ACTION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pipetrain {

enum class ActionType {
  kForward,       // F
  kBackward,      // B: gradient of the chunk's input (what the previous stage waits for)
  kWeight,        // W: gradient of the chunk's parameters (nobody waits for it)
  kSendForward,   // SEND_F
  kRecvForward,   // RECV_F
  kSendBackward,  // SEND_B
  kRecvBackward,  // RECV_B
};

// "F", "B", "W", "SEND_F", "RECV_F", "SEND_B", "RECV_B".
const char* ActionTypeName(ActionType type);

inline bool IsCompute(ActionType t) {
  return t == ActionType::kForward || t == ActionType::kBackward || t == ActionType::kWeight;
}
inline bool IsSend(ActionType t) {
  return t == ActionType::kSendForward || t == ActionType::kSendBackward;
}
inline bool IsRecv(ActionType t) {
  return t == ActionType::kRecvForward || t == ActionType::kRecvBackward;
}

struct Action {
  ActionType type = ActionType::kForward;
  int microbatch = 0;
  int chunk = 0;  // local chunk index on the rank that runs the action
  int peer = -1;  // the other rank of a SEND/RECV; -1 for F, B, W

  friend bool operator==(const Action&, const Action&) = default;
};

// Shorthands for building schedules in code and tests.
inline Action Forward(int mb, int chunk) { return {ActionType::kForward, mb, chunk, -1}; }
inline Action Backward(int mb, int chunk) { return {ActionType::kBackward, mb, chunk, -1}; }
inline Action Weight(int mb, int chunk) { return {ActionType::kWeight, mb, chunk, -1}; }

std::string FormatAction(const Action& action);

// Inverse of FormatAction. Errors quote the text and say which part is wrong.
absl::StatusOr<Action> ParseAction(absl::string_view text);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_ACTION_H_
