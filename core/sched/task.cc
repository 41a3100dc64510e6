#include "core/sched/task.h"

#include "absl/strings/str_cat.h"

namespace inferd {

absl::string_view TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kPending:
      return "PENDING";
    case TaskState::kWaitingDeps:
      return "WAITING_DEPS";
    case TaskState::kQueued:
      return "QUEUED";
    case TaskState::kRunning:
      return "RUNNING";
    case TaskState::kSucceeded:
      return "SUCCEEDED";
    case TaskState::kFailed:
      return "FAILED";
    case TaskState::kCancelled:
      return "CANCELLED";
    case TaskState::kTimedOut:
      return "TIMED_OUT";
  }
  return "UNKNOWN";
}

absl::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSucceeded:
      return "succeeded";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kCancelled:
      return "cancelled";
    case Outcome::kTimedOut:
      return "timed_out";
  }
  return "failed";
}

Outcome OutcomeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return Outcome::kSucceeded;
    case absl::StatusCode::kCancelled:
      return Outcome::kCancelled;
    case absl::StatusCode::kDeadlineExceeded:
      return Outcome::kTimedOut;
    default:
      return Outcome::kFailed;
  }
}

TaskState TerminalStateOf(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSucceeded:
      return TaskState::kSucceeded;
    case Outcome::kCancelled:
      return TaskState::kCancelled;
    case Outcome::kTimedOut:
      return TaskState::kTimedOut;
    case Outcome::kFailed:
      break;
  }
  return TaskState::kFailed;
}

}  // namespace inferd
