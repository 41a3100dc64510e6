// TaskRecord and TaskTable: the scheduler's bookkeeping for submitted
// tasks (internal to core/sched). A record holds what was submitted, the
// task's state and results, its dependency edges and its waiters; the
// table maps ids to records in shards (no global lock) and keeps finished
// tasks up to a retention bound, evicting the oldest finished first (per
// shard: each keeps at most ceil(max_retained / shards)).
//
// Lock order: TaskRecord::mu -> device lane / batcher / waiter / watcher
// locks -> TaskTable shard locks. No path holds two records' locks.
#ifndef INFERD_CORE_SCHED_TASK_TABLE_H_
#define INFERD_CORE_SCHED_TASK_TABLE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/infer/infer_request.h"
#include "core/models/model.h"
#include "core/sched/task.h"
#include "core/sched/tensor_access.h"

namespace inferd {

class TaskGraph;
struct Job;

// One task. Fields in the first group are constant after submit.
//
// Lifetime: a record owns its dependencies (`deps`) only while it may still
// need them (until it is queued or terminal) and its dependents only until
// it is terminal, so a finished record keeps no other record alive and the
// table's retention bound holds for whole chains. Destruction is iterative:
// dropping the last owner of a long chain never recurses once per link.
class TaskRecord final : public InferResponder, public std::enable_shared_from_this<TaskRecord> {
 public:
  TaskRecord() = default;
  ~TaskRecord() override;
  TaskRecord(const TaskRecord&) = delete;
  TaskRecord& operator=(const TaskRecord&) = delete;

  struct InputPlan {
    std::string name;
    TaskInput::Source source = TaskInput::Source::kInline;
    TensorDesc desc;      // inline and tensor inputs
    std::string data;     // inline bytes; released once the task has finished
    std::string handle;   // tensor input
    int dep = -1;         // index into deps, for task outputs
    int dep_output = -1;  // output index in the dependency's model
  };

  TaskGraph* graph = nullptr;  // told when the task's job completes
  TensorAccess* tensors = nullptr;
  TaskId id;
  std::shared_ptr<const Model> model;
  ModelParams params;
  Priority priority = Priority::kNormal;
  std::vector<InputPlan> inputs;
  std::vector<TaskId> dep_ids;  // one per dependency slot
  uint64_t requested_mask = ~uint64_t{0};  // bit i: output i is returned
  uint64_t memory_requirement = 0;
  int device_constraint = -1;
  int max_retries = 0;
  bool keep_outputs_on_device = false;
  std::string owner;
  absl::Time submit_time;
  absl::Time deadline = absl::InfiniteFuture();

  // The table's count of live records (see TaskTable::live_records).
  std::shared_ptr<std::atomic<int64_t>> live_count;

  mutable absl::Mutex mu;
  // The dependency of each slot of dep_ids; emptied once the record is
  // queued (its job holds what it reads) or terminal.
  std::vector<std::shared_ptr<TaskRecord>> deps ABSL_GUARDED_BY(mu);
  TaskState state ABSL_GUARDED_BY(mu) = TaskState::kPending;
  absl::Status status ABSL_GUARDED_BY(mu);
  int device ABSL_GUARDED_BY(mu) = -1;
  int attempts ABSL_GUARDED_BY(mu) = 0;
  bool batched ABSL_GUARDED_BY(mu) = false;
  absl::Time queued_time ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  absl::Time start_time ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  absl::Time finish_time ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  // One per model output (signature order); `present` when produced.
  std::vector<TaskOutput> outputs ABSL_GUARDED_BY(mu);
  std::vector<bool> present ABSL_GUARDED_BY(mu);
  // Device outputs made for the current attempt, pinned until it ends.
  std::vector<AccessedTensor> output_pins ABSL_GUARDED_BY(mu);
  int pending_deps ABSL_GUARDED_BY(mu) = 0;
  // Counted against its priority's queue depth from submission until its
  // job takes the count over (MakeReady) or it ends without one.
  bool holds_admission ABSL_GUARDED_BY(mu) = false;
  std::vector<std::shared_ptr<TaskRecord>> dependents ABSL_GUARDED_BY(mu);
  Job* job ABSL_GUARDED_BY(mu) = nullptr;  // while queued or running
  std::vector<uint64_t> waiters ABSL_GUARDED_BY(mu);
  uint64_t deps_timer ABSL_GUARDED_BY(mu) = 0;

  // Returns a snapshot; outputs only when `with_outputs` and SUCCEEDED.
  TaskInfo Snapshot(bool with_outputs) const;
  TaskInfo SnapshotLocked(bool with_outputs) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  TaskEvent EventLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // inferd::InferResponder: outputs land in the record; Complete reports to
  // the scheduler.
  void* AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) override;
  void* AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                             Device& device) override;
  void Complete(absl::Status status) override;
};

// Orders the tasks of one SubmitTasks call so that every task comes after
// the tasks of the same call it depends on; `within[i]` lists task i's
// dependencies in the call as (dependency slot, index) pairs. Iterative
// (no recursion on request data). When they form a cycle, returns an empty
// order and one cycle, as indices whose first and last are the same, in
// *cycle.
std::vector<int> OrderWithinCall(absl::Span<const std::vector<std::pair<int, int>>> within,
                                 std::vector<int>* cycle);

// Thread-safe.
class TaskTable {
 public:
  static constexpr int kShards = 16;

  explicit TaskTable(size_t max_retained);

  // Counts `record` in live_records until it is destroyed (call once,
  // before it is shared).
  void Track(TaskRecord& record);
  // Records alive: retained ones plus any that something still holds (a
  // queued job, a waiter, a dependent that has not run yet).
  int64_t live_records() const { return live_->load(std::memory_order_relaxed); }

  void Insert(std::shared_ptr<TaskRecord> record);
  // Null when unknown (never submitted, or evicted after finishing).
  std::shared_ptr<TaskRecord> Find(const TaskId& id) const;
  // Notes that `id` finished; evicts the shard's oldest finished tasks
  // beyond the retention bound.
  void Finished(const TaskId& id);
  // One page in id order. INVALID_ARGUMENT for a malformed page token.
  absl::StatusOr<TaskPage> List(const TaskListOptions& options) const;
  size_t size() const;
  // Every retained record (shutdown).
  std::vector<std::shared_ptr<TaskRecord>> All() const;

 private:
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<TaskId, std::shared_ptr<TaskRecord>> tasks ABSL_GUARDED_BY(mu);
    std::deque<TaskId> finished ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(const TaskId& id) { return shards_[id.lo % kShards]; }
  const Shard& ShardOf(const TaskId& id) const { return shards_[id.lo % kShards]; }

  const size_t per_shard_limit_;
  // Shared with each record, which may outlive the table.
  const std::shared_ptr<std::atomic<int64_t>> live_ = std::make_shared<std::atomic<int64_t>>(0);
  std::array<Shard, kShards> shards_;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_TASK_TABLE_H_
