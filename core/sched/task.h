// Task: the scheduler's unit of work as clients see it — a model run with
// inputs (inline bytes, tensor handles, or the outputs of another task), a
// priority, dependencies, placement hints, a timeout and a retry budget —
// plus its id, its states and the snapshots the scheduler hands out.
//
//   PENDING -> WAITING_DEPS -> QUEUED -> RUNNING -> SUCCEEDED | FAILED |
//                                                   CANCELLED | TIMED_OUT
//
// A task with no unfinished dependency skips WAITING_DEPS; a retried task
// goes from RUNNING back to QUEUED. Every type here is a plain value.
#ifndef INFERD_CORE_SCHED_TASK_H_
#define INFERD_CORE_SCHED_TASK_H_

#include <compare>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/infer/infer_request.h"
#include "core/models/model.h"
#include "core/tensor/dtype.h"
#include "core/util/opaque_id.h"
#include "core/util/priority.h"

namespace inferd {

// An opaque 128-bit task handle (an OpaqueId: random, unguessable, 32
// lowercase hex digits; the all-zero id is never issued).
struct TaskIdTag {
  static constexpr absl::string_view kWhat = "task";
};
using TaskId = OpaqueId<TaskIdTag>;

// Returns a fresh random id. Thread-safe.
inline TaskId NewTaskId() { return TaskId::New(); }
inline std::string FormatTaskId(const TaskId& id) { return id.ToString(); }
// INVALID_ARGUMENT naming `field` unless `text` is 32 hex digits (not all 0).
inline absl::StatusOr<TaskId> ParseTaskId(absl::string_view text,
                                          absl::string_view field = "task_id") {
  return TaskId::Parse(text, field);
}

enum class TaskState : uint8_t {
  kPending = 0,
  kWaitingDeps = 1,
  kQueued = 2,
  kRunning = 3,
  kSucceeded = 4,
  kFailed = 5,
  kCancelled = 6,
  kTimedOut = 7,
};
inline constexpr int kNumTaskStates = 8;

// "PENDING", "WAITING_DEPS", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED",
// "CANCELLED", "TIMED_OUT".
absl::string_view TaskStateName(TaskState state);
inline bool IsTerminal(TaskState s) { return s >= TaskState::kSucceeded; }

// How a finished unit of work ended, as metrics label it.
enum class Outcome : uint8_t { kSucceeded = 0, kFailed = 1, kCancelled = 2, kTimedOut = 3 };
inline constexpr int kNumOutcomes = 4;
// "succeeded", "failed", "cancelled", "timed_out".
absl::string_view OutcomeName(Outcome outcome);
// OK -> succeeded, CANCELLED -> cancelled, DEADLINE_EXCEEDED -> timed_out,
// anything else -> failed.
Outcome OutcomeOf(const absl::Status& status);
TaskState TerminalStateOf(Outcome outcome);

// One model input of a task.
struct TaskInput {
  enum class Source : uint8_t { kInline, kTensor, kTaskOutput };

  std::string name;  // the model's input name
  Source source = Source::kInline;
  // kInline: the tensor by value (row-major little-endian bytes).
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  std::string data;
  // kTensor: a tensor store handle; the tensor is pinned while the task runs.
  std::string tensor_handle;
  // kTaskOutput: output `output_name` of task `dependency` (a task id, or
  // the key of a task in the same submission). The dependency is added to
  // depends_on if missing; its output feeds this input without a round trip
  // to the client (by reference on the host, or by handle on the device).
  std::string dependency;
  std::string output_name;
};

// What a client submits.
struct TaskSpec {
  // Names the task within one SubmitTasks call so that other tasks of the
  // same call can depend on it before it has an id. Optional.
  std::string key;
  std::string model_name;
  std::string model_version;  // "" = the loaded version
  std::vector<TaskInput> inputs;
  std::vector<std::string> requested_outputs;  // empty = every output
  ModelParams params;
  Priority priority = Priority::kNormal;
  std::vector<std::string> depends_on;  // task ids or keys of the same call
  uint64_t memory_requirement_bytes = 0;
  int device = -1;                                // >= 0: run only on this device
  absl::Duration timeout = absl::ZeroDuration();  // <= 0: the default
  int max_retries = -1;                           // < 0: the default
  // Keep outputs on the device as tensor-store handles (needs the memory
  // engine) instead of returning their bytes.
  bool keep_outputs_on_device = false;
  std::string owner;  // client id, for listing and output tensors
};

struct TaskOutput {
  std::string name;
  DataType dtype = DataType::kInvalid;
  Shape shape;
  uint64_t byte_size = 0;
  std::string data;           // the bytes, when returned inline
  std::string tensor_handle;  // the tensor, when kept on the device
  int device = -1;            // where tensor_handle lives
};

// A snapshot of one task.
struct TaskInfo {
  TaskId id;
  std::string model_name;
  std::string model_version;
  Priority priority = Priority::kNormal;
  TaskState state = TaskState::kPending;
  absl::Status status;  // why it failed, was cancelled or timed out
  std::vector<TaskId> depends_on;
  std::string owner;
  int device = -1;       // where it last ran or is queued; -1 before placement
  int attempts = 0;      // executions started
  bool batched = false;  // ran merged with other requests
  absl::Time submit_time = absl::InfinitePast();
  absl::Time queued_time = absl::InfinitePast();  // last entry into QUEUED
  absl::Time start_time = absl::InfinitePast();   // last entry into RUNNING
  absl::Time finish_time = absl::InfinitePast();
  absl::Time deadline = absl::InfiniteFuture();
  std::vector<TaskOutput> outputs;  // SUCCEEDED only, when asked for
};

// One state change, as WatchTasks streams it.
struct TaskEvent {
  TaskId id;
  TaskState state = TaskState::kPending;
  absl::Time time;
  int device = -1;
  std::string model_name;
  Priority priority = Priority::kNormal;
  absl::Status status;  // terminal states other than SUCCEEDED
};

// Called exactly once with a task's snapshot (or why there is none).
using TaskWaitCallback = absl::AnyInvocable<void(absl::StatusOr<TaskInfo>) &&>;

struct TaskListOptions {
  bool filter_state = false;
  TaskState state = TaskState::kPending;
  std::string model_name;  // "" = any
  std::string owner;       // "" = any
  int page_size = 100;     // <= 0: 100; at most 1000
  std::string page_token;  // from the previous page; "" for the first
};

struct TaskPage {
  std::vector<TaskInfo> tasks;  // in id order, without outputs
  std::string next_page_token;  // "" on the last page
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_TASK_H_
