#include "core/sched/task.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/util/check.h"

namespace inferd {
namespace {

// Buffers getrandom(2) output so that an id costs no system call most times.
class RandomIds {
 public:
  TaskId Next() {
    absl::MutexLock lock(&mu_);
    while (true) {
      if (used_ + 16 > sizeof(buf_)) Refill();
      TaskId id;
      std::memcpy(&id.hi, buf_ + used_, 8);
      std::memcpy(&id.lo, buf_ + used_ + 8, 8);
      used_ += 16;
      if (id.valid()) return id;
    }
  }

 private:
  void Refill() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t got = 0;
    while (got < sizeof(buf_)) {
      const ssize_t n = getrandom(buf_ + got, sizeof(buf_) - got, 0);
      if (n < 0 && errno == EINTR) continue;
      INFERD_CHECK(n > 0);
      got += static_cast<size_t>(n);
    }
    used_ = 0;
  }

  absl::Mutex mu_;
  unsigned char buf_[4096] ABSL_GUARDED_BY(mu_);
  size_t used_ ABSL_GUARDED_BY(mu_) = sizeof(buf_);
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

TaskId NewTaskId() {
  static RandomIds* ids = new RandomIds();
  return ids->Next();
}

std::string FormatTaskId(const TaskId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kHex[(id.hi >> (4 * i)) & 0xf];
    out[31 - i] = kHex[(id.lo >> (4 * i)) & 0xf];
  }
  return out;
}

absl::StatusOr<TaskId> ParseTaskId(absl::string_view text, absl::string_view field) {
  if (text.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": expected a task id of 32 hex digits, got ", text.size(),
                     " characters"));
  }
  TaskId id;
  for (int i = 0; i < 32; ++i) {
    const int v = HexValue(text[i]);
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": task id has a non-hex character at position ", i));
    }
    uint64_t& half = i < 16 ? id.hi : id.lo;
    half = (half << 4) | static_cast<uint64_t>(v);
  }
  if (!id.valid()) return absl::InvalidArgumentError(absl::StrCat(field, ": task id is zero"));
  return id;
}

absl::string_view TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kPending: return "PENDING";
    case TaskState::kWaitingDeps: return "WAITING_DEPS";
    case TaskState::kQueued: return "QUEUED";
    case TaskState::kRunning: return "RUNNING";
    case TaskState::kSucceeded: return "SUCCEEDED";
    case TaskState::kFailed: return "FAILED";
    case TaskState::kCancelled: return "CANCELLED";
    case TaskState::kTimedOut: return "TIMED_OUT";
  }
  return "UNKNOWN";
}

absl::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSucceeded: return "succeeded";
    case Outcome::kFailed: return "failed";
    case Outcome::kCancelled: return "cancelled";
    case Outcome::kTimedOut: return "timed_out";
  }
  return "failed";
}

Outcome OutcomeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return Outcome::kSucceeded;
    case absl::StatusCode::kCancelled: return Outcome::kCancelled;
    case absl::StatusCode::kDeadlineExceeded: return Outcome::kTimedOut;
    default: return Outcome::kFailed;
  }
}

TaskState TerminalStateOf(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSucceeded: return TaskState::kSucceeded;
    case Outcome::kCancelled: return TaskState::kCancelled;
    case Outcome::kTimedOut: return TaskState::kTimedOut;
    case Outcome::kFailed: break;
  }
  return TaskState::kFailed;
}

absl::string_view PriorityLabel(Priority priority) {
  static constexpr absl::string_view kLabels[] = {"critical", "high", "normal", "low",
                                                  "background"};
  return kLabels[static_cast<int>(priority)];
}

absl::string_view PriorityName(Priority priority) {
  static constexpr absl::string_view kNames[] = {"CRITICAL", "HIGH", "NORMAL", "LOW",
                                                 "BACKGROUND"};
  return kNames[static_cast<int>(priority)];
}

}  // namespace inferd
