// SchedulerOptions: everything the scheduler engine is configured with, as
// one plain struct (the composition root maps config onto it; tests set it
// directly), and the stats and samples it reports.
#ifndef INFERD_CORE_SCHED_SCHEDULER_OPTIONS_H_
#define INFERD_CORE_SCHED_SCHEDULER_OPTIONS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/config/config.h"
#include "core/infer/infer_request.h"
#include "core/models/model.h"
#include "core/sched/placement.h"
#include "core/sched/task.h"

namespace inferd {

// What the scaler's workload window takes from the scheduler (the fields of
// core/scaling's SchedulerSample), computed over one sample interval.
struct SchedulerLoadSample {
  double queue_length = 0.0;             // requests + tasks queued now
  double processing_time_seconds = 0.0;  // mean execution time of those finished
  double throughput_tasks_per_second = 0.0;
};

// Per-model batching settings (defaults from the scheduler config; a model's
// config.yaml dynamic_batching block overrides them). How they are applied:
// core/sched/batching_stage.h.
struct BatchingPolicy {
  bool enabled = true;
  int max_batch_size = 0;                  // 0: the model's max_batch_size; never above it
  std::vector<int> preferred_batch_sizes;  // flush at the largest; empty: max
  absl::Duration max_queue_delay = absl::Microseconds(500);
  // A request that finds nothing pending for its model while a device slot
  // is free runs at once instead of waiting max_queue_delay. Off here (a
  // plain struct batches by the delay alone); scheduler.batch_dispatch_when_idle
  // turns it on for the daemon.
  bool dispatch_when_idle = false;
};

struct SchedulerOptions {
  // device.multi_gpu.performance_optimization.* keys.
  PlacementStrategy strategy = PlacementStrategy::kBalanced;
  BalancedWeights balanced_weights;
  int max_tasks_per_device = 4;
  absl::Duration default_timeout = absl::Seconds(300);
  bool enable_preemption = false;
  bool enable_migration = false;

  // scheduler.* keys.
  int max_queue_depth = 10000;                       // queued per priority, all devices together
  absl::Duration aging_interval = absl::Seconds(2);  // <= 0: strict priority
  int default_max_retries = 2;
  absl::Duration retry_backoff = absl::Milliseconds(10);  // doubles per attempt
  absl::Duration max_retry_backoff = absl::Seconds(1);
  int unhealthy_threshold = 3;                                  // consecutive device failures
  absl::Duration unhealthy_probe_interval = absl::Seconds(30);  // <= 0: no probe
  size_t max_retained_tasks = 10000;                            // finished tasks kept for GetTask
  size_t watch_buffer_events = 1024;                            // per WatchTasks subscriber
  BatchingPolicy default_batching;                              // enabled/max delay/preferred sizes
  // Threads (the dispatching one included) that copy a batch's requests
  // into its pinned input block when it starts; copies below 1 MiB stay on
  // the dispatching thread.
  int batch_gather_threads = 1;
  // Batching rule 6 (BatchingStage): requests of up to 64 KiB are copied
  // into their batch's pinned arrival block as they join it.
  bool batch_gather_on_arrival = false;
  // Most queued requests one device slot runs together (a group) when it
  // is the device's last free slot: requests of unbatched models, not
  // BACKGROUND, ModelInfer only; at most the slot's share of the queue
  // (queued / max_tasks_per_device). 1 = a slot runs one request.
  int max_requests_per_slot = 1;
  // With groups on (max_requests_per_slot > 1): how many of a device's
  // slots requests of unbatched models hold at once. Another such request
  // stays queued while they run and joins the next group, instead of
  // running alone in a free slot; the other slots stay for other work.
  // 0 = every slot.
  int group_slots = 0;
  LimitsConfig limits;                                          // checks on task inputs

  // Returns a model's own batching settings (its config.yaml), or nullopt
  // to use default_batching. May be null.
  std::function<std::optional<BatchingPolicy>(const ModelSignature&)> batching_lookup;

  // Returns how many rows of `model` fit on device `device` now (the memory
  // engine's GetOptimalBatchSize: core/sched/memory_batch_size.h). The
  // scheduler caps each batching model's batches at the smallest answer over
  // the eligible devices divided by max_tasks_per_device (that many batches
  // may run on one device at once), at least 1. It asks when the model's
  // batcher is made and again every batch_limit_refresh, never on the
  // request path otherwise. RESOURCE_EXHAUSTED counts as 1 row; other
  // errors are ignored. May be null (no cap).
  std::function<absl::StatusOr<int64_t>(const ModelSignature& model, int device)>
      optimal_batch_size;
  absl::Duration batch_limit_refresh = absl::Seconds(10);

  // Slot i runs on stream (first_stream + i) % num_streams. The daemon keeps
  // stream 0 for the memory engine's own work (zeroing, compaction moves),
  // so a task's completion never waits on work queued behind itself.
  int first_stream = 0;

  // Engine internals.
  absl::Duration timeout_sweep_interval = absl::Milliseconds(50);
  absl::Duration sample_interval = absl::Seconds(1);
  // Run RunTimers() on a background thread (real time). Tests with a
  // FakeClock leave it off and call RunTimers() themselves.
  bool start_timer_thread = true;
  // SubmitTasks runs no device work on the caller's thread (AsyncOnlyScope):
  // the daemon's request threads get the ids at once. Off, an idle inline
  // host device runs ready tasks before SubmitTasks returns, which tests
  // that step through a task's life use.
  bool submit_tasks_async = false;

  // Told (on the timer thread, or whoever calls RunTimers; no scheduler
  // lock held) when a device is marked unhealthy or healthy again. May call
  // SetDeviceActive. May be null.
  std::function<void(int device, bool healthy, const std::string& reason)> on_device_health;
  // Called every sample_interval with the load (for the dynamic scaler's
  // RecordSchedulerSample). May be null.
  std::function<void(const SchedulerLoadSample&)> on_load_sample;
};

// SchedulerOptionsFromConfig (core/config/engine_options.h) maps the
// config's keys onto these.

struct DeviceSchedulerStats {
  int device = 0;
  bool active = true;
  bool healthy = true;
  int queued = 0;
  int running = 0;
  int consecutive_failures = 0;
  uint64_t completed = 0;  // executions finished here (any outcome)
  uint64_t failures = 0;   // executions that failed with a device error
  uint64_t reserved_bytes = 0;
};

struct SchedulerStats {
  std::string strategy;
  std::array<int64_t, kNumPriorities> queued_by_priority{};
  int64_t queued = 0;
  int64_t running = 0;
  int64_t waiting_deps = 0;                        // tasks
  int64_t pending_batch = 0;                       // requests waiting in a batcher
  uint64_t submitted = 0;                          // requests + tasks accepted
  std::array<uint64_t, kNumOutcomes> completed{};  // by Outcome
  uint64_t rejected = 0;                           // queue full
  uint64_t retries = 0;
  uint64_t preemptions = 0;       // running BACKGROUND executions requeued for CRITICAL work
  uint64_t batches = 0;           // merged executions
  uint64_t batched_requests = 0;  // requests that ran in them
  uint64_t groups = 0;            // slots that ran several unbatched requests together
  uint64_t grouped_requests = 0;  // requests that ran in them
  uint64_t tasks_retained = 0;
  // Task records in memory: the retained ones and any a live job, waiter
  // or waiting dependent still holds.
  uint64_t task_records = 0;
  double mean_queue_seconds = 0.0;      // since start
  double mean_execution_seconds = 0.0;  // since start
  std::vector<DeviceSchedulerStats> devices;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_SCHEDULER_OPTIONS_H_
