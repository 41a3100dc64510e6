#include "core/sched/task_graph.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/device/device.h"
#include "core/sched/job.h"
#include "core/tensor/bytes_framing.h"
#include "core/util/checked_math.h"
#include "core/util/echo.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

constexpr size_t kMaxTasksPerCall = 1000;

absl::Status WithField(const absl::Status& st, absl::string_view field) {
  return absl::Status(st.code(), absl::StrCat(field, ": ", st.message()));
}

int FindName(const std::vector<TensorSpec>& specs, absl::string_view name) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

TaskGraph::TaskGraph(const SchedulerOptions& options, const ModelRegistry* models,
                     TensorAccess* tensors, Clock* clock, int num_devices, TaskGraphHooks hooks)
    : options_(options),
      models_(models),
      tensors_(tensors),
      clock_(clock),
      num_devices_(num_devices),
      hooks_(std::move(hooks)),
      tasks_(options.max_retained_tasks),
      watchers_(static_cast<size_t>(options.limits.max_watch_streams)) {}

// ---------------------------------------------------------------------------
// Submission.

absl::StatusOr<std::shared_ptr<TaskRecord>> TaskGraph::BuildRecord(
    TaskSpec& spec, int index, const std::string& field, absl::Span<const TaskSpec> all,
    const absl::flat_hash_map<std::string, int>& keys, absl::Time now,
    std::vector<std::pair<int, int>>* batch_deps) {
  if (spec.model_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".model_name: must be set"));
  }
  absl::StatusOr<std::shared_ptr<const Model>> model =
      models_->Find(spec.model_name, spec.model_version);
  if (!model.ok()) return WithField(model.status(), absl::StrCat(field, ".model_name"));
  const ModelSignature& sig = (*model)->signature();

  auto record = std::make_shared<TaskRecord>();
  TaskRecord& rec = *record;
  tasks_.Track(rec);
  rec.graph = this;
  rec.tensors = tensors_;
  rec.id = NewTaskId();
  rec.model = *model;
  rec.params = spec.params;
  const int priority = static_cast<int>(spec.priority);
  if (priority < 0 || priority >= kNumPriorities) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".priority: unknown priority"));
  }
  rec.priority = spec.priority;
  rec.memory_requirement = spec.memory_requirement_bytes;
  if (spec.device >= 0 && !hooks_.has_device(spec.device)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".device: ", spec.device,
                                                   " is not a device of this daemon (",
                                                   num_devices_, " device(s))"));
  }
  rec.device_constraint = spec.device < 0 ? -1 : spec.device;
  if (spec.timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".timeout: must not be negative"));
  }
  rec.deadline =
      now + (spec.timeout > absl::ZeroDuration() ? spec.timeout : options_.default_timeout);
  if (spec.max_retries > kMaxRetriesLimit) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".max_retries: ", spec.max_retries,
                                                   " is out of range [0, ", kMaxRetriesLimit, "]"));
  }
  rec.max_retries = spec.max_retries < 0 ? options_.default_max_retries : spec.max_retries;
  if (spec.keep_outputs_on_device && tensors_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        field, ".keep_outputs_on_device: this daemon runs no tensor store to keep outputs in"));
  }
  rec.keep_outputs_on_device = spec.keep_outputs_on_device;
  rec.owner = spec.owner;
  rec.submit_time = now;

  if (!spec.requested_outputs.empty()) {
    rec.requested_mask = 0;
    for (size_t i = 0; i < spec.requested_outputs.size(); ++i) {
      const int o = FindName(sig.outputs, spec.requested_outputs[i]);
      if (o < 0 || o >= 64) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".requested_outputs[", i, "]: model '", sig.name,
                         "' has no output named ", Echo(spec.requested_outputs[i])));
      }
      rec.requested_mask |= uint64_t{1} << o;
    }
  }
  {
    absl::MutexLock lock(&rec.mu);  // not shared yet; keeps the analysis simple
    rec.outputs.resize(sig.outputs.size());
    rec.present.assign(sig.outputs.size(), false);
  }

  // Dependencies: one slot per distinct task, from depends_on and inputs
  // (slots of tasks in this call stay null until SubmitSpecs wires them).
  std::vector<std::shared_ptr<TaskRecord>> deps;
  absl::flat_hash_map<std::string, int> slot_of;  // "#k" (this call) or task id text
  auto add_dep = [&](const std::string& ref, const std::string& ref_field) -> absl::StatusOr<int> {
    auto key = keys.find(ref);
    if (key != keys.end()) {
      if (key->second == index) {
        return absl::InvalidArgumentError(
            absl::StrCat(ref_field, ": task ", Echo(ref), " cannot depend on itself"));
      }
      const std::string slot_key = absl::StrCat("#", key->second);
      auto it = slot_of.find(slot_key);
      if (it != slot_of.end()) return it->second;
      const int slot = static_cast<int>(deps.size());
      deps.push_back(nullptr);
      rec.dep_ids.push_back(TaskId{});
      batch_deps->emplace_back(slot, key->second);
      slot_of[slot_key] = slot;
      return slot;
    }
    absl::StatusOr<TaskId> id = ParseTaskId(ref, ref_field);
    if (!id.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          ref_field, ": ", Echo(ref), " is neither a task id nor the key of a task in this call"));
    }
    const std::string slot_key = FormatTaskId(*id);
    auto it = slot_of.find(slot_key);
    if (it != slot_of.end()) return it->second;
    std::shared_ptr<TaskRecord> dep = tasks_.Find(*id);
    if (dep == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(ref_field, ": unknown task ", slot_key,
                       " (never submitted, or finished and no longer retained)"));
    }
    const int slot = static_cast<int>(deps.size());
    deps.push_back(std::move(dep));
    rec.dep_ids.push_back(*id);
    slot_of[slot_key] = slot;
    return slot;
  };
  for (size_t j = 0; j < spec.depends_on.size(); ++j) {
    absl::StatusOr<int> slot =
        add_dep(spec.depends_on[j], absl::StrCat(field, ".depends_on[", j, "]"));
    if (!slot.ok()) return slot.status();
  }

  // Inputs: names, counts, sizes; tensors described; dependency outputs
  // checked against the dependency's model.
  if (spec.inputs.size() != sig.inputs.size()) {
    std::vector<absl::string_view> names;
    for (const auto& s : sig.inputs) names.push_back(s.name);
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".inputs: model '", sig.name, "' expects ", sig.inputs.size(),
                     " input(s) (", absl::StrJoin(names, ", "), "), got ", spec.inputs.size()));
  }
  std::vector<bool> seen(sig.inputs.size(), false);
  for (size_t j = 0; j < spec.inputs.size(); ++j) {
    TaskInput& in = spec.inputs[j];
    const std::string in_field = absl::StrCat(field, ".inputs[", j, "]");
    const int pos = FindName(sig.inputs, in.name);
    if (pos < 0) {
      return absl::InvalidArgumentError(absl::StrCat(in_field, ".name: model '", sig.name,
                                                     "' has no input named ", Echo(in.name)));
    }
    if (seen[pos]) {
      return absl::InvalidArgumentError(
          absl::StrCat(in_field, ".name: input ", Echo(in.name), " given twice"));
    }
    seen[pos] = true;
    TaskRecord::InputPlan plan;
    plan.name = in.name;
    plan.source = in.source;
    switch (in.source) {
      case TaskInput::Source::kInline: {
        if (in.dtype == DataType::kInvalid) {
          return absl::InvalidArgumentError(
              absl::StrCat(in_field, ".tensor.datatype: must be set"));
        }
        if (in.shape.size() > static_cast<size_t>(options_.limits.max_dims)) {
          return absl::InvalidArgumentError(absl::StrCat(in_field, ".tensor.shape: rank ",
                                                         in.shape.size(), " exceeds the limit of ",
                                                         options_.limits.max_dims));
        }
        uint64_t elements = 0;
        if (!ShapeElementCount(in.shape, &elements)) {
          return absl::InvalidArgumentError(absl::StrCat(
              in_field, ".tensor.shape: negative dimension or element count overflow"));
        }
        if (in.data.size() > static_cast<uint64_t>(options_.limits.max_tensor_bytes)) {
          return absl::InvalidArgumentError(absl::StrCat(in_field, ".tensor.data: ", in.data.size(),
                                                         " bytes exceed limits.max_tensor_bytes (",
                                                         options_.limits.max_tensor_bytes, ")"));
        }
        if (in.dtype == DataType::kBytes) {
          const absl::Status layout = CheckBytesFraming(
              absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(in.data.data()),
                                  in.data.size()),
              elements);
          if (!layout.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat(in_field, ".tensor.data: ", layout.message()));
          }
        }
        uint64_t expected = 0;
        if (in.dtype != DataType::kBytes &&
            (!CheckedMul(elements, DataTypeSize(in.dtype), &expected) ||
             expected != in.data.size())) {
          return absl::InvalidArgumentError(absl::StrCat(
              in_field, ".tensor.data: shape holds ", elements, " ", DataTypeName(in.dtype),
              " elements but ", in.data.size(), " bytes were given"));
        }
        plan.desc.dtype = in.dtype;
        plan.desc.shape.assign(in.shape.begin(), in.shape.end());
        plan.desc.byte_size = in.data.size();
        plan.data = std::move(in.data);
        break;
      }
      case TaskInput::Source::kTensor: {
        if (tensors_ == nullptr) {
          return absl::FailedPreconditionError(absl::StrCat(
              in_field, ".tensor_id: this daemon runs no tensor store to read handles from"));
        }
        absl::StatusOr<StoredTensor> stored = tensors_->Describe(in.tensor_handle);
        if (!stored.ok()) return WithField(stored.status(), in_field + ".tensor_id");
        plan.desc = stored->desc;
        plan.handle = in.tensor_handle;
        break;
      }
      case TaskInput::Source::kTaskOutput: {
        const std::string dep_field = in_field + ".task_output.task";
        absl::StatusOr<int> slot = add_dep(in.dependency, dep_field);
        if (!slot.ok()) return slot.status();
        plan.dep = *slot;
        // The dependency's model and returned outputs.
        std::shared_ptr<const Model> dep_model;
        uint64_t dep_mask = ~uint64_t{0};
        if (deps[*slot] != nullptr) {
          dep_model = deps[*slot]->model;
          dep_mask = deps[*slot]->requested_mask;
        } else {
          const TaskSpec& dep_spec = all[keys.at(in.dependency)];
          absl::StatusOr<std::shared_ptr<const Model>> m =
              models_->Find(dep_spec.model_name, dep_spec.model_version);
          if (!m.ok()) return WithField(m.status(), dep_field);
          dep_model = *m;
          if (!dep_spec.requested_outputs.empty()) {
            dep_mask = 0;
            for (const std::string& name : dep_spec.requested_outputs) {
              const int o = FindName(dep_model->signature().outputs, name);
              if (o >= 0 && o < 64) dep_mask |= uint64_t{1} << o;
            }
          }
        }
        const int o = FindName(dep_model->signature().outputs, in.output_name);
        if (o < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              in_field, ".task_output.output: model '", dep_model->signature().name, "' of task ",
              Echo(in.dependency), " has no output named ", Echo(in.output_name)));
        }
        if (o >= 64 || !(dep_mask >> o & 1)) {
          return absl::InvalidArgumentError(absl::StrCat(
              in_field, ".task_output.output: task ", Echo(in.dependency), " does not return output ",
              Echo(in.output_name), " (not in its requested_outputs)"));
        }
        plan.dep_output = o;
        break;
      }
    }
    rec.inputs.push_back(std::move(plan));
  }
  absl::MutexLock lock(&rec.mu);
  rec.deps = std::move(deps);
  return record;
}

absl::Status TaskGraph::Submit(absl::Span<TaskSpec> specs,
                                    absl::InlinedVector<TaskId, 1>* ids) {
  if (specs.empty()) return absl::InvalidArgumentError("tasks: at least one task is required");
  if (specs.size() > kMaxTasksPerCall) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tasks: ", specs.size(), " tasks exceed the limit of ", kMaxTasksPerCall, " per call"));
  }
  absl::flat_hash_map<std::string, int> keys;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].key.empty()) continue;
    if (!keys.emplace(specs[i].key, static_cast<int>(i)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tasks[", i, "].key: ", Echo(specs[i].key), " is used twice"));
    }
  }
  const absl::Time now = clock_->Now();
  const size_t n = specs.size();
  absl::InlinedVector<std::shared_ptr<TaskRecord>, 1> records(n);
  absl::InlinedVector<std::vector<std::pair<int, int>>, 1> batch_deps(n);
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<std::shared_ptr<TaskRecord>> rec =
        BuildRecord(specs[i], static_cast<int>(i), absl::StrCat("tasks[", i, "]"), specs, keys, now,
                    &batch_deps[i]);
    if (!rec.ok()) return rec.status();
    records[i] = *std::move(rec);
  }

  // Order and cycle check first: a rejected call must leave no edge behind.
  std::vector<int> cycle;
  const std::vector<int> order = OrderWithinCall(batch_deps, &cycle);
  if (!cycle.empty()) {
    // Names at most kCycleNames keys of a long cycle.
    constexpr size_t kCycleNames = 8;
    std::vector<std::string> names;
    for (size_t i = 0; i < cycle.size() && i < kCycleNames; ++i) {
      names.push_back(Echo(specs[cycle[i]].key));
    }
    if (cycle.size() > kCycleNames) {
      names.push_back(absl::StrCat("... ", Echo(specs[cycle.back()].key), " (",
                                   cycle.size() - 1, " tasks)"));
    }
    return absl::InvalidArgumentError(absl::StrCat("tasks[", cycle[0],
                                                   "].depends_on: dependency cycle ",
                                                   absl::StrJoin(names, " -> ")));
  }
  for (size_t i = 0; i < n; ++i) {
    if (batch_deps[i].empty()) continue;
    TaskRecord& rec = *records[i];
    absl::MutexLock lock(&rec.mu);  // not shared yet; keeps the analysis simple
    for (const auto& [slot, k] : batch_deps[i]) {
      rec.deps[slot] = records[k];
      rec.dep_ids[slot] = records[k]->id;
    }
  }
  std::array<int64_t, kNumPriorities> per_priority{};
  for (const auto& rec : records) ++per_priority[static_cast<int>(rec->priority)];
  RETURN_IF_ERROR(hooks_.admit(per_priority));
  for (const auto& rec : records) {
    absl::MutexLock lock(&rec->mu);
    rec->holds_admission = true;
  }
  for (const auto& rec : records) tasks_.Insert(rec);
  for (const auto& rec : records) ids->push_back(rec->id);
  if (!watchers_.empty()) {
    // Events for PENDING, in submission order.
    for (const auto& rec : records) {
      absl::MutexLock lock(&rec->mu);
      watchers_.Publish(rec->EventLocked(now));
    }
  }
  // Device work that becomes ready here goes to the streams' threads: the
  // caller gets the ids at once, however much work the call holds.
  std::optional<AsyncOnlyScope> async_only;
  if (options_.submit_tasks_async) async_only.emplace();
  for (int i : order) WireAndRelease(records[i]);
  return absl::OkStatus();
}

void TaskGraph::WireAndRelease(const std::shared_ptr<TaskRecord>& record) {
  TaskRecord& rec = *record;
  std::vector<std::shared_ptr<TaskRecord>> deps;
  {
    absl::MutexLock lock(&rec.mu);
    deps = rec.deps;
    rec.pending_deps = static_cast<int>(deps.size()) + 1;  // +1 guards the wiring
  }
  int done = 0;
  absl::Status failure;
  for (const auto& dep : deps) {
    absl::MutexLock lock(&dep->mu);
    if (!IsTerminal(dep->state)) {
      dep->dependents.push_back(record);
    } else if (dep->state == TaskState::kSucceeded) {
      ++done;
    } else if (failure.ok()) {
      failure = absl::FailedPreconditionError(absl::StrCat(
          "depends_on: task ", FormatTaskId(dep->id), " ", TaskStateName(dep->state),
          dep->status.message().empty() ? "" : absl::StrCat(": ", dep->status.message())));
    }
  }
  bool ready = false;
  bool terminal = false;
  {
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&rec.mu);
    if (IsTerminal(rec.state)) return;  // cancelled, or failed by a dependency
    if (!failure.ok()) {
      terminal = SetTerminalLocked(rec, failure, now);
    } else {
      rec.pending_deps -= 1 + done;
      if (rec.pending_deps == 0) {
        ready = true;
      } else {
        SetStateLocked(rec, TaskState::kWaitingDeps, now);
        std::weak_ptr<TaskRecord> weak = record;
        rec.deps_timer = hooks_.schedule(rec.deadline, [this, weak] {
          std::shared_ptr<TaskRecord> r = weak.lock();
          if (r == nullptr) return;
          bool timed_out = false;
          {
            absl::MutexLock lock(&r->mu);
            r->deps_timer = 0;
            if (r->state == TaskState::kWaitingDeps) {
              timed_out = SetTerminalLocked(
                  *r,
                  absl::DeadlineExceededError(
                      "timeout: the deadline passed while waiting for dependencies"),
                  clock_->Now());
            }
          }
          if (timed_out) AfterTerminal(r);
        });
      }
    }
  }
  if (terminal) {
    AfterTerminal(record);
  } else if (ready) {
    hooks_.run(record);
  }
}

// ---------------------------------------------------------------------------
// Terminal states.

void TaskGraph::SetStateLocked(TaskRecord& rec, TaskState state, absl::Time now) {
  if (rec.state == state) return;
  if (rec.state == TaskState::kWaitingDeps) waiting_deps_.fetch_sub(1);
  if (state == TaskState::kWaitingDeps) waiting_deps_.fetch_add(1);
  rec.state = state;
  if (!watchers_.empty()) watchers_.Publish(rec.EventLocked(now));
}

bool TaskGraph::SetTerminalLocked(TaskRecord& rec, const absl::Status& status, absl::Time now) {
  if (IsTerminal(rec.state)) return false;
  rec.status = status;
  rec.finish_time = now;
  SetStateLocked(rec, TerminalStateOf(OutcomeOf(status)), now);
  return true;
}

void TaskGraph::Fail(const std::shared_ptr<TaskRecord>& record, const absl::Status& status) {
  bool terminal = false;
  {
    absl::MutexLock lock(&record->mu);
    terminal = SetTerminalLocked(*record, status, clock_->Now());
  }
  if (terminal) AfterTerminal(record);
}

void TaskGraph::Finish(TaskRecord* rec, absl::Status status) {
  std::shared_ptr<TaskRecord> record = rec->shared_from_this();
  std::vector<AccessedTensor> pins;
  std::vector<std::string> frees;
  bool terminal = false;
  {
    absl::MutexLock lock(&rec->mu);
    rec->job = nullptr;
    pins.swap(rec->output_pins);
    terminal = SetTerminalLocked(*rec, status, clock_->Now());
    if (rec->state != TaskState::kSucceeded) {
      for (size_t i = 0; i < rec->outputs.size(); ++i) {
        if (!rec->outputs[i].tensor_handle.empty()) {
          frees.push_back(std::move(rec->outputs[i].tensor_handle));
          rec->outputs[i].tensor_handle.clear();
        }
        rec->present[i] = false;
        rec->outputs[i].data.clear();
      }
    }
  }
  if (tensors_ != nullptr) {
    for (const AccessedTensor& t : pins) tensors_->Release(t);
    for (const std::string& handle : frees) tensors_->Free(handle);
  }
  if (terminal) {
    // Its job is gone and no other will be made: the inline input bytes
    // (up to a message's size each) need not stay for as long as the
    // finished task is kept for GetTask and ListTasks.
    for (TaskRecord::InputPlan& in : rec->inputs) std::string().swap(in.data);
    AfterTerminal(record);
  }
}

void TaskGraph::FailWithoutJob(const absl::Status& status) {
  for (const auto& rec : tasks_.All()) {
    bool terminal = false;
    {
      absl::MutexLock lock(&rec->mu);
      if (rec->job == nullptr) terminal = SetTerminalLocked(*rec, status, clock_->Now());
    }
    if (terminal) AfterTerminal(rec);
  }
}

void TaskGraph::AfterTerminal(const std::shared_ptr<TaskRecord>& record) {
  // Iterative (a failure may run down a long chain of dependents); the
  // first record needs no work list.
  std::vector<std::shared_ptr<TaskRecord>> work;
  std::shared_ptr<TaskRecord> next = record;
  while (next != nullptr) {
    std::shared_ptr<TaskRecord> rec = std::move(next);
    if (!work.empty()) {
      next = std::move(work.back());
      work.pop_back();
    }
    std::vector<std::shared_ptr<TaskRecord>> dependents;
    std::vector<std::shared_ptr<TaskRecord>> deps;  // released unlocked
    std::vector<uint64_t> waiters;
    TaskState state;
    absl::Status status;
    {
      absl::MutexLock lock(&rec->mu);
      dependents.swap(rec->dependents);
      deps.swap(rec->deps);
      if (rec->holds_admission) {  // ended without a job
        rec->holds_admission = false;
        hooks_.unadmit(rec->priority);
      }
      waiters.swap(rec->waiters);
      state = rec->state;
      status = rec->status;
      if (rec->deps_timer != 0) {
        hooks_.cancel_timer(rec->deps_timer);
        rec->deps_timer = 0;
      }
    }
    tasks_.Finished(rec->id);
    ResolveWaiters(std::move(waiters), rec.get());
    absl::Status dep_failure;
    if (state != TaskState::kSucceeded) {
      dep_failure = absl::FailedPreconditionError(
          absl::StrCat("depends_on: task ", FormatTaskId(rec->id), " ", TaskStateName(state),
                       status.message().empty() ? "" : absl::StrCat(": ", status.message())));
    }
    const absl::Time now = clock_->Now();
    for (auto& child : dependents) {
      bool ready = false;
      bool failed = false;
      {
        absl::MutexLock lock(&child->mu);
        if (IsTerminal(child->state)) continue;
        if (!dep_failure.ok()) {
          failed = SetTerminalLocked(*child, dep_failure, now);
        } else if (--child->pending_deps == 0 && child->state == TaskState::kWaitingDeps) {
          ready = true;
        }
      }
      if (failed) {
        if (next == nullptr) {
          next = std::move(child);
        } else {
          work.push_back(std::move(child));
        }
      }
      if (ready) hooks_.run(child);
    }
  }
}

// ---------------------------------------------------------------------------
// Queries, waits, watches, cancellation.

absl::StatusOr<std::shared_ptr<TaskRecord>> TaskGraph::FindOrNotFound(const TaskId& id) const {
  std::shared_ptr<TaskRecord> rec = tasks_.Find(id);
  if (rec == nullptr) {
    return absl::NotFoundError(absl::StrCat("task_id: no task ", FormatTaskId(id),
                                            " (never submitted, or finished and evicted)"));
  }
  return rec;
}

absl::StatusOr<TaskInfo> TaskGraph::Get(const TaskId& id, bool with_outputs) const {
  ASSIGN_OR_RETURN(std::shared_ptr<TaskRecord> rec, FindOrNotFound(id));
  return rec->Snapshot(with_outputs);
}

absl::StatusOr<TaskPage> TaskGraph::List(const TaskListOptions& options) const {
  return tasks_.List(options);
}

absl::StatusOr<uint64_t> TaskGraph::Wait(const TaskId& id, absl::Time deadline,
                                             TaskWaitCallback done) {
  ASSIGN_OR_RETURN(std::shared_ptr<TaskRecord> rec, FindOrNotFound(id));
  uint64_t wait_id = 0;
  std::optional<TaskInfo> finished;
  {
    absl::MutexLock lock(&rec->mu);
    if (IsTerminal(rec->state)) {
      finished = rec->SnapshotLocked(true);
    } else {
      absl::MutexLock wait_lock(&waiters_mu_);
      wait_id = next_wait_id_++;
      waiters_.emplace(wait_id, Waiter{rec, std::move(done), 0});
      rec->waiters.push_back(wait_id);
    }
  }
  if (finished.has_value()) {
    std::move(done)(*std::move(finished));
    return uint64_t{0};
  }
  if (deadline < absl::InfiniteFuture()) {
    const uint64_t timer = hooks_.schedule(deadline, [this, wait_id] {
      std::optional<Waiter> w = TakeWaiter(wait_id);
      if (!w.has_value()) return;
      TaskInfo info;
      {
        absl::MutexLock lock(&w->record->mu);
        auto& ids = w->record->waiters;
        ids.erase(std::remove(ids.begin(), ids.end(), wait_id), ids.end());
        info = w->record->SnapshotLocked(true);
      }
      std::move(w->done)(std::move(info));
    });
    absl::MutexLock lock(&waiters_mu_);
    auto it = waiters_.find(wait_id);
    if (it != waiters_.end()) it->second.timer = timer;
  }
  return wait_id;
}

std::optional<TaskGraph::Waiter> TaskGraph::TakeWaiter(uint64_t wait_id) {
  absl::MutexLock lock(&waiters_mu_);
  auto it = waiters_.find(wait_id);
  if (it == waiters_.end()) return std::nullopt;
  std::optional<Waiter> w(std::move(it->second));
  waiters_.erase(it);
  return w;
}

void TaskGraph::CancelWait(uint64_t wait_id) {
  std::optional<Waiter> w = TakeWaiter(wait_id);
  if (!w.has_value()) return;
  if (w->timer != 0) hooks_.cancel_timer(w->timer);
  {
    absl::MutexLock lock(&w->record->mu);
    auto& ids = w->record->waiters;
    ids.erase(std::remove(ids.begin(), ids.end(), wait_id), ids.end());
  }
  std::move(w->done)(absl::CancelledError("wait cancelled"));
}

void TaskGraph::ResolveWaiters(std::vector<uint64_t> waiters, TaskRecord* record) {
  if (waiters.empty()) return;
  const TaskInfo info = record->Snapshot(true);
  for (uint64_t id : waiters) {
    std::optional<Waiter> w = TakeWaiter(id);
    if (!w.has_value()) continue;
    if (w->timer != 0) hooks_.cancel_timer(w->timer);
    std::move(w->done)(info);
  }
}

std::shared_ptr<TaskWatcher> TaskGraph::Watch(WatchOptions options, std::function<void()> notify) {
  if (options.buffer_events == 0) options.buffer_events = options_.watch_buffer_events;
  return watchers_.Add(std::move(options), std::move(notify));
}

void TaskGraph::Unwatch(const std::shared_ptr<TaskWatcher>& watcher) { watchers_.Remove(watcher); }

void TaskGraph::CloseWatchers() { watchers_.CloseAll(); }

absl::StatusOr<TaskInfo> TaskGraph::Cancel(const TaskId& id) {
  ASSIGN_OR_RETURN(std::shared_ptr<TaskRecord> rec, FindOrNotFound(id));
  Job* owned = nullptr;
  bool terminal = false;
  TaskInfo info;
  {
    absl::MutexLock lock(&rec->mu);
    if (IsTerminal(rec->state)) {
      return absl::FailedPreconditionError(absl::StrCat("task_id: task ", FormatTaskId(id),
                                                        " already finished (",
                                                        TaskStateName(rec->state), ")"));
    }
    if (rec->job != nullptr) {
      rec->job->cancelled.store(true);
      if (hooks_.unqueue(rec->job)) owned = rec->job;
    }
    terminal =
        SetTerminalLocked(*rec, absl::CancelledError("cancelled by CancelTask"), clock_->Now());
    info = rec->SnapshotLocked(false);
  }
  if (owned != nullptr) hooks_.drop(owned, absl::CancelledError("cancelled by CancelTask"));
  if (terminal) AfterTerminal(rec);
  return info;
}

}  // namespace inferd
