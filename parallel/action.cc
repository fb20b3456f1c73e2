#include "parallel/action.h"

#include <cctype>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace pipetrain {
namespace {

// Consumes a run of decimal digits from the front of `text` into `value`.
bool ConsumeInt(absl::string_view* text, int* value) {
  size_t n = 0;
  while (n < text->size() && std::isdigit(static_cast<unsigned char>((*text)[n]))) ++n;
  if (n == 0 || n > 9) return false;  // 9 digits cannot overflow an int
  if (!absl::SimpleAtoi(text->substr(0, n), value)) return false;
  text->remove_prefix(n);
  return true;
}

absl::Status Malformed(absl::string_view text, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot parse action \"", text, "\": ", what,
      " (expected e.g. F3c1, B3c1, W3c1, SEND_F3c1>2, RECV_F3c1<0, SEND_B3c1>0, RECV_B3c1<2)"));
}

}  // namespace

const char* ActionTypeName(ActionType type) {
  switch (type) {
    case ActionType::kForward:
      return "F";
    case ActionType::kBackward:
      return "B";
    case ActionType::kWeight:
      return "W";
    case ActionType::kSendForward:
      return "SEND_F";
    case ActionType::kRecvForward:
      return "RECV_F";
    case ActionType::kSendBackward:
      return "SEND_B";
    case ActionType::kRecvBackward:
      return "RECV_B";
  }
  return "?";
}

std::string FormatAction(const Action& action) {
  std::string out = absl::StrCat(ActionTypeName(action.type), action.microbatch, "c", action.chunk);
  if (IsSend(action.type)) absl::StrAppend(&out, ">", action.peer);
  if (IsRecv(action.type)) absl::StrAppend(&out, "<", action.peer);
  return out;
}

absl::StatusOr<Action> ParseAction(absl::string_view text) {
  absl::string_view rest = text;
  Action action;
  // No name is a prefix of another, so the first match is the only one.
  static constexpr ActionType kTypes[] = {ActionType::kSendForward,  ActionType::kRecvForward,
                                          ActionType::kSendBackward, ActionType::kRecvBackward,
                                          ActionType::kForward,      ActionType::kBackward,
                                          ActionType::kWeight};
  bool found = false;
  for (ActionType type : kTypes) {
    if (absl::ConsumePrefix(&rest, ActionTypeName(type))) {
      action.type = type;
      found = true;
      break;
    }
  }
  if (!found) return Malformed(text, "unknown action name");
  if (!ConsumeInt(&rest, &action.microbatch)) {
    return Malformed(text, "missing micro-batch number after the action name");
  }
  if (!absl::ConsumePrefix(&rest, "c") || !ConsumeInt(&rest, &action.chunk)) {
    return Malformed(text, "missing 'c<chunk>' after the micro-batch");
  }
  if (IsSend(action.type) || IsRecv(action.type)) {
    const char* arrow = IsSend(action.type) ? ">" : "<";
    if (!absl::ConsumePrefix(&rest, arrow) || !ConsumeInt(&rest, &action.peer)) {
      return Malformed(text, absl::StrCat("missing '", arrow, "<peer rank>' after the chunk"));
    }
  }
  if (!rest.empty()) return Malformed(text, absl::StrCat("unexpected \"", rest, "\" at the end"));
  return action;
}

}  // namespace pipetrain
