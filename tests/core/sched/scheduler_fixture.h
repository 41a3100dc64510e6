// A test fixture that builds a Scheduler over host devices with a fake
// clock (no timer thread: tests call RunTimers after advancing it).
#ifndef INFERD_TESTS_CORE_SCHED_SCHEDULER_FIXTURE_H_
#define INFERD_TESTS_CORE_SCHED_SCHEDULER_FIXTURE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/device/device_allocator.h"
#include "core/models/model_registry.h"
#include "core/sched/scheduler.h"
#include "core/util/clock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/core/sched/sched_test_util.h"

namespace inferd::testing {

class SchedulerFixture : public ::testing::Test {
 protected:
  static SchedulerOptions DefaultOptions() {
    SchedulerOptions o;
    o.strategy = PlacementStrategy::kRoundRobin;
    o.max_tasks_per_device = 1;
    o.start_timer_thread = false;
    o.default_batching.max_queue_delay = absl::Milliseconds(1);
    return o;
  }

  // Builds `n` host devices (inline streams when `inline_streams`, else
  // worker threads) and the scheduler.
  void Build(int n, bool inline_streams, SchedulerOptions options = DefaultOptions(),
             bool with_tensors = false, std::vector<uint64_t> capacities = {}) {
    for (int i = 0; i < n; ++i) {
      HostDeviceOptions o;
      o.index = i;
      o.ordinal = i;
      o.capacity_bytes = capacities.empty() ? (64u << 20) : capacities[i];
      o.num_streams = 4;
      o.inline_when_idle = inline_streams;
      devices_.push_back(std::make_unique<HostDevice>(o));
      device_ptrs_.push_back(devices_.back().get());
    }
    if (staging_) {
      auto staging = std::make_unique<CountingStagingAllocator>();
      staging_allocator_ = staging.get();
      allocator_ = std::move(staging);
    } else {
      allocator_ = NewRawDeviceAllocator();
    }
    for (auto& m : BuiltinModels()) models_.Add(std::move(m));
    models_.Add(model_);
    models_.Add(batch_model_);
    if (with_tensors) tensors_ = std::make_unique<FakeTensorAccess>(device_ptrs_);
    options.start_timer_thread = false;
    auto s = Scheduler::Create(options, device_ptrs_, allocator_.get(), &models_, tensors_.get(),
                               &clock_, registry_);
    ASSERT_TRUE(s.ok()) << s.status();
    sched_ = *std::move(s);
  }

  void TearDown() override {
    for (auto& g : gates_) g->Open();
    if (sched_ != nullptr) sched_->Shutdown();
  }

  std::shared_ptr<Gate> NewGate() {
    gates_.push_back(std::make_shared<Gate>());
    return gates_.back();
  }

  // Holds one slot: submits `blocker` (a call of `model`, the test model
  // by default) so that it waits on the returned gate, which the test
  // opens to let it finish. Only `blocker` is held: the call must start
  // running as it is submitted.
  std::shared_ptr<Gate> HoldSlot(TestCall* blocker) { return HoldSlot(blocker, *model_); }
  std::shared_ptr<Gate> HoldSlot(TestCall* blocker, TestModel& model) {
    auto gate = NewGate();
    model.SetGate(gate);
    sched_->Submit(blocker->request(), blocker);
    model.SetGate(nullptr);
    return gate;
  }

  void Advance(absl::Duration d) {
    clock_.Advance(d);
    sched_->RunTimers();
  }

  // A task running the test model (OUTPUT0 = 2 * INPUT0) on [rows, cols].
  static TaskSpec Spec(const std::string& model, int64_t rows, int64_t cols, float base,
                       Priority priority = Priority::kNormal, double tag = 0) {
    TaskSpec spec;
    spec.model_name = model;
    spec.priority = priority;
    spec.params.factor = tag;
    TaskInput in;
    in.name = "INPUT0";
    in.dtype = DataType::kFp32;
    in.shape = {rows, cols};
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<float>(i);
    in.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    spec.inputs.push_back(std::move(in));
    return spec;
  }

  static std::vector<float> Floats(const std::string& bytes) {
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
    return v;
  }

  TaskId Submit(TaskSpec spec) {
    absl::StatusOr<TaskId> id = sched_->SubmitTask(std::move(spec));
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(TaskId{});
  }

  // Waits (with a generous real-time guard, not a timing assertion) until
  // the task is terminal.
  TaskInfo WaitFor(const TaskId& id) {
    absl::Notification done;
    absl::StatusOr<TaskInfo> out = absl::UnknownError("not called");
    absl::StatusOr<uint64_t> w =
        sched_->WaitTask(id, absl::InfiniteFuture(), [&](absl::StatusOr<TaskInfo> r) {
          out = std::move(r);
          done.Notify();
        });
    EXPECT_TRUE(w.ok()) << w.status();
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
      ADD_FAILURE() << "task " << FormatTaskId(id) << " did not finish";
      sched_->CancelWait(*w);
      done.WaitForNotification();
    }
    EXPECT_TRUE(out.ok()) << out.status();
    return out.value_or(TaskInfo{});
  }

  static absl::Status WaitCall(TestCall& call) { return call.Wait(); }

  TaskState StateOf(const TaskId& id) {
    absl::StatusOr<TaskInfo> info = sched_->GetTask(id, false);
    return info.ok() ? info->state : TaskState::kPending;
  }

  // Value of the metric `name` whose labels include `labels` (counter,
  // gauge, or a histogram's sample count); nullopt when absent.
  std::optional<double> Metric(const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        bool match = true;
        for (const auto& [k, v] : labels) {
          bool found = false;
          for (const auto& l : m.label) found |= l.name == k && l.value == v;
          match &= found;
        }
        if (!match) continue;
        switch (family.type) {
          case prometheus::MetricType::Counter:
            return m.counter.value;
          case prometheus::MetricType::Gauge:
            return m.gauge.value;
          case prometheus::MetricType::Histogram:
            return static_cast<double>(m.histogram.sample_count);
          default:
            return std::nullopt;
        }
      }
    }
    return std::nullopt;
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  std::vector<std::unique_ptr<HostDevice>> devices_;
  std::vector<Device*> device_ptrs_;
  std::unique_ptr<DeviceAllocator> allocator_;
  // Set before Build: the allocator hands out staging blocks (heap memory
  // standing in for pinned), counted by staging_allocator_.
  bool staging_ = false;
  CountingStagingAllocator* staging_allocator_ = nullptr;
  ModelRegistry models_;
  std::shared_ptr<TestModel> model_ = std::make_shared<TestModel>("test", 0);
  std::shared_ptr<TestModel> batch_model_ = std::make_shared<TestModel>("batched", 8);
  std::unique_ptr<FakeTensorAccess> tensors_;
  std::vector<std::shared_ptr<Gate>> gates_;
  std::unique_ptr<Scheduler> sched_;
};

}  // namespace inferd::testing

#endif  // INFERD_TESTS_CORE_SCHED_SCHEDULER_FIXTURE_H_
