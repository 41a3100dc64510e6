#include "core/sched/task_table.h"

#include <algorithm>
#include <utility>

#include "core/sched/task_graph.h"
#include "core/util/logging.h"

namespace inferd {

TaskRecord::~TaskRecord() {
  // The outermost destructor on a thread releases the edges of every record
  // that dies with it, one at a time; nested ones only hand theirs over.
  thread_local std::vector<std::shared_ptr<TaskRecord>>* releasing = nullptr;
  std::vector<std::shared_ptr<TaskRecord>> edges;
  {
    absl::MutexLock lock(&mu);
    edges = std::move(deps);
    for (auto& d : dependents) edges.push_back(std::move(d));
    dependents.clear();
  }
  if (live_count != nullptr) live_count->fetch_sub(1, std::memory_order_relaxed);
  if (releasing != nullptr) {
    for (auto& e : edges) releasing->push_back(std::move(e));
    return;
  }
  releasing = &edges;
  while (!edges.empty()) {
    std::shared_ptr<TaskRecord> next = std::move(edges.back());
    edges.pop_back();
    next.reset();  // a record dying here appends its edges to `edges`
  }
  releasing = nullptr;
}

TaskInfo TaskRecord::Snapshot(bool with_outputs) const {
  absl::MutexLock lock(&mu);
  return SnapshotLocked(with_outputs);
}

TaskInfo TaskRecord::SnapshotLocked(bool with_outputs) const {
  TaskInfo info;
  info.id = id;
  info.model_name = model->signature().name;
  info.model_version = model->signature().version;
  info.priority = priority;
  info.state = state;
  info.status = status;
  info.depends_on = dep_ids;
  info.owner = owner;
  info.device = device;
  info.attempts = attempts;
  info.batched = batched;
  info.submit_time = submit_time;
  info.queued_time = queued_time;
  info.start_time = start_time;
  info.finish_time = finish_time;
  info.deadline = deadline;
  if (with_outputs && state == TaskState::kSucceeded) {
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (present[i]) info.outputs.push_back(outputs[i]);
    }
  }
  return info;
}

TaskEvent TaskRecord::EventLocked(absl::Time now) const {
  TaskEvent event;
  event.id = id;
  event.state = state;
  event.time = now;
  event.device = device;
  event.model_name = model->signature().name;
  event.priority = priority;
  if (IsTerminal(state)) event.status = status;
  return event;
}

void* TaskRecord::AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) {
  if (index >= 64 || !(requested_mask >> index & 1)) return nullptr;
  absl::MutexLock lock(&mu);
  if (static_cast<size_t>(index) >= outputs.size()) return nullptr;
  TaskOutput& out = outputs[index];
  out.name = spec.name;
  out.dtype = desc.dtype;
  out.shape = desc.shape;
  out.byte_size = desc.byte_size;
  out.tensor_handle.clear();
  out.device = -1;
  out.data.resize(desc.byte_size);
  present[index] = true;
  return out.data.data();
}

void* TaskRecord::AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                                       Device& device) {
  if (!keep_outputs_on_device || tensors == nullptr) return nullptr;
  if (index >= 64 || !(requested_mask >> index & 1)) return nullptr;
  std::string old_handle;
  {
    absl::MutexLock lock(&mu);
    if (static_cast<size_t>(index) >= outputs.size()) return nullptr;
    old_handle = std::move(outputs[index].tensor_handle);
    outputs[index].tensor_handle.clear();
    present[index] = false;
  }
  // A tensor left by a failed attempt (unpinned when that attempt ended).
  if (!old_handle.empty()) tensors->Free(old_handle);
  std::string handle;
  absl::StatusOr<AccessedTensor> created =
      tensors->CreateOutput(device.index(), desc, owner, &handle);
  if (!created.ok()) {
    INFERD_LOG(kWarning, "task ", FormatTaskId(id), ": output ", spec.name,
               " returned inline: ", created.status().ToString());
    return nullptr;
  }
  absl::MutexLock lock(&mu);
  TaskOutput& out = outputs[index];
  out.name = spec.name;
  out.dtype = desc.dtype;
  out.shape = desc.shape;
  out.byte_size = desc.byte_size;
  out.data.clear();
  out.tensor_handle = std::move(handle);
  out.device = device.index();
  present[index] = true;
  output_pins.push_back(*created);
  return created->data;
}

void TaskRecord::Complete(absl::Status status) { graph->Finish(this, std::move(status)); }

TaskTable::TaskTable(size_t max_retained)
    : per_shard_limit_(std::max<size_t>(1, (max_retained + kShards - 1) / kShards)) {}

std::vector<int> OrderWithinCall(absl::Span<const std::vector<std::pair<int, int>>> within,
                                 std::vector<int>* cycle) {
  const size_t n = within.size();
  std::vector<int> order;
  order.reserve(n);
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> children(n);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& [slot, k] : within[i]) {
      ++pending[i];
      children[k].push_back(static_cast<int>(i));
    }
  }
  // Kahn's algorithm: parents first.
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) order.push_back(static_cast<int>(i));
  }
  for (size_t head = 0; head < order.size(); ++head) {
    for (int c : children[order[head]]) {
      if (--pending[c] == 0) order.push_back(c);
    }
  }
  if (order.size() == n) return order;
  // Walk unfinished tasks along their unfinished dependencies until one
  // repeats: that is a cycle.
  int at = 0;
  while (pending[at] == 0) ++at;
  std::vector<int> path;
  std::vector<int> seen_at(n, -1);
  while (seen_at[at] < 0) {
    seen_at[at] = static_cast<int>(path.size());
    path.push_back(at);
    for (const auto& [slot, k] : within[at]) {
      if (pending[k] > 0) {
        at = k;
        break;
      }
    }
  }
  cycle->assign(path.begin() + seen_at[at], path.end());
  cycle->push_back(at);
  return {};
}

void TaskTable::Track(TaskRecord& record) {
  live_->fetch_add(1, std::memory_order_relaxed);
  record.live_count = live_;
}

void TaskTable::Insert(std::shared_ptr<TaskRecord> record) {
  Shard& shard = ShardOf(record->id);
  absl::MutexLock lock(&shard.mu);
  shard.tasks.emplace(record->id, std::move(record));
}

std::shared_ptr<TaskRecord> TaskTable::Find(const TaskId& id) const {
  const Shard& shard = ShardOf(id);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.tasks.find(id);
  return it == shard.tasks.end() ? nullptr : it->second;
}

void TaskTable::Finished(const TaskId& id) {
  Shard& shard = ShardOf(id);
  std::vector<std::shared_ptr<TaskRecord>> evicted;  // released unlocked
  absl::MutexLock lock(&shard.mu);
  shard.finished.push_back(id);
  while (shard.finished.size() > per_shard_limit_) {
    auto it = shard.tasks.find(shard.finished.front());
    if (it != shard.tasks.end()) {
      evicted.push_back(std::move(it->second));
      shard.tasks.erase(it);
    }
    shard.finished.pop_front();
  }
}

absl::StatusOr<TaskPage> TaskTable::List(const TaskListOptions& options) const {
  TaskId after;
  if (!options.page_token.empty()) {
    absl::StatusOr<TaskId> parsed = ParseTaskId(options.page_token, "page_token");
    if (!parsed.ok()) return parsed.status();
    after = *parsed;
  }
  const size_t page_size = options.page_size <= 0 ? 100 : std::min<size_t>(options.page_size, 1000);
  std::vector<std::shared_ptr<TaskRecord>> candidates;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [id, record] : shard.tasks) {
      if (options.page_token.empty() || after < id) candidates.push_back(record);
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& a, const auto& b) { return a->id < b->id; });
  TaskPage page;
  for (const auto& record : candidates) {
    TaskInfo info = record->Snapshot(/*with_outputs=*/false);
    if (options.filter_state && info.state != options.state) continue;
    if (!options.model_name.empty() && info.model_name != options.model_name) continue;
    if (!options.owner.empty() && info.owner != options.owner) continue;
    if (page.tasks.size() == page_size) {
      page.next_page_token = FormatTaskId(page.tasks.back().id);
      break;
    }
    page.tasks.push_back(std::move(info));
  }
  return page;
}

std::vector<std::shared_ptr<TaskRecord>> TaskTable::All() const {
  std::vector<std::shared_ptr<TaskRecord>> out;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [id, record] : shard.tasks) out.push_back(record);
  }
  return out;
}

size_t TaskTable::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    n += shard.tasks.size();
  }
  return n;
}

}  // namespace inferd
