// sched_bench: the scheduler engine's own overhead per task — submit ->
// place -> queue -> dispatch -> execute -> complete — with a no-op model on
// host devices whose streams run work inline when idle, and an allocator
// that hands out one static buffer, so what is measured is the scheduler
// (plus ExecuteOnDevice's bookkeeping), not copies or malloc.
//
//   sched_bench [--tasks=200000] [--threads=2] [--devices=2] [--warmup=20000]
//               [--only=infer|task] [--deadlock_detection]
//
// Paths measured:
//   infer  — InferSubmitter::Submit (the ModelInfer path), one thread
//   infer  — the same from --threads threads at once (throughput)
//   task   — SubmitTask with an inline input and inline output, one thread
// Latency is per task, submit to completion (inline completion makes the
// two the same call); it includes two steady_clock reads. Heap allocations
// per task are counted with a global operator new hook.
// Prints a table and one JSON line (prefix "JSON ").
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/device/host_device.h"
#include "core/models/model_registry.h"
#include "core/sched/scheduler.h"
#include "core/util/clock.h"
#include "prometheus/registry.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace inferd {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Reads nothing, writes nothing: the cheapest model the scheduler can run.
class NoopModel final : public Model {
 public:
  NoopModel() {
    sig_.name = "noop";
    sig_.platform = "bench";
    sig_.inputs.push_back(TensorSpec{"INPUT0", DataType::kFp32, {-1}});
  }
  const ModelSignature& signature() const override { return sig_; }
  absl::Status Validate(absl::Span<const TensorDesc>, const ModelParams&,
                        absl::Span<TensorDesc>) const override {
    return absl::OkStatus();
  }
  absl::Status Execute(Stream&, absl::Span<const DeviceTensor>, const ModelParams&,
                       absl::Span<const DeviceTensor>) const override {
    return absl::OkStatus();
  }

 private:
  ModelSignature sig_;
};

// Hands out one static buffer (the no-op model never touches it).
class StaticAllocator final : public DeviceAllocator {
 public:
  absl::StatusOr<void*> Allocate(Device&, Stream&, size_t) override { return buffer_; }
  void Free(Device&, Stream&, void*) override {}

 private:
  alignas(256) static inline char buffer_[4096];
};

// Completes into counters; reused for every request of one thread.
class CountingResponder final : public InferResponder {
 public:
  void* AllocateOutput(int, const TensorSpec&, const TensorDesc&) override { return nullptr; }
  void Complete(absl::Status status) override {
    if (!status.ok()) failures.fetch_add(1, std::memory_order_relaxed);
    done.fetch_add(1, std::memory_order_release);
  }
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> failures{0};
};

struct Flags {
  int tasks = 200000;
  int threads = 2;
  int devices = 2;
  int warmup = 20000;
  std::string only;                 // "infer" or "task": run one path
  bool deadlock_detection = false;  // leave Abseil's default (on in Debian's build)
};

struct Result {
  std::string name;
  int threads = 1;
  uint64_t tasks = 0;
  double p50_us = 0;
  double p99_us = 0;
  double tasks_per_second = 0;
  double allocations_per_task = 0;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

struct Bench {
  explicit Bench(const Flags& flags) {
    for (int i = 0; i < flags.devices; ++i) {
      HostDeviceOptions o;
      o.index = i;
      o.ordinal = i;
      o.capacity_bytes = 64 << 20;
      o.num_streams = 4;
      o.inline_when_idle = true;
      devices.push_back(std::make_unique<HostDevice>(o));
      ptrs.push_back(devices.back().get());
    }
    models.Add(model);
    SchedulerOptions options;
    options.strategy = PlacementStrategy::kLeastLoaded;
    options.max_tasks_per_device = 4;
    options.max_queue_depth = 1 << 30;
    options.max_retained_tasks = 4096;
    options.start_timer_thread = true;
    scheduler = *Scheduler::Create(options, ptrs, &allocator, &models, nullptr,
                                   inferd::Clock::Real(), registry);
  }

  InferRequest Request() {
    InferRequest r;
    r.model = model;
    InferInput in;
    in.name = "INPUT0";
    in.desc.dtype = DataType::kFp32;
    in.desc.shape = {1};
    in.desc.byte_size = 4;
    in.data = &input;
    r.inputs.push_back(in);
    return r;
  }

  float input = 1.0f;
  std::vector<std::unique_ptr<HostDevice>> devices;
  std::vector<Device*> ptrs;
  StaticAllocator allocator;
  ModelRegistry models;
  std::shared_ptr<const Model> model = std::make_shared<NoopModel>();
  prometheus::Registry registry;
  std::unique_ptr<Scheduler> scheduler;
};

Result RunInfer(Bench& b, int threads, int tasks_per_thread) {
  std::vector<std::vector<double>> lat(threads);
  std::vector<std::unique_ptr<CountingResponder>> responders;
  for (int t = 0; t < threads; ++t) responders.push_back(std::make_unique<CountingResponder>());
  const InferRequest proto = b.Request();
  const uint64_t alloc0 = g_allocations.load();
  const auto start = SteadyClock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      lat[t].reserve(tasks_per_thread);
      CountingResponder& r = *responders[t];
      for (int i = 0; i < tasks_per_thread; ++i) {
        const auto t0 = SteadyClock::now();
        b.scheduler->Submit(proto, &r);
        // Inline streams complete before Submit returns when a slot is
        // free; otherwise the task is queued and completes shortly.
        lat[t].push_back(
            std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count());
      }
      while (r.done.load(std::memory_order_acquire) < static_cast<uint64_t>(tasks_per_thread)) {
        std::this_thread::yield();
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const uint64_t allocs = g_allocations.load() - alloc0;
  std::vector<double> all;
  uint64_t failures = 0;
  for (int t = 0; t < threads; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    failures += responders[t]->failures.load();
  }
  if (failures > 0) std::fprintf(stderr, "%" PRIu64 " requests failed\n", failures);
  Result r;
  r.name = "infer";
  r.threads = threads;
  r.tasks = static_cast<uint64_t>(threads) * tasks_per_thread;
  r.p50_us = Percentile(all, 0.50);
  r.p99_us = Percentile(all, 0.99);
  r.tasks_per_second = static_cast<double>(r.tasks) / seconds;
  r.allocations_per_task = static_cast<double>(allocs) / static_cast<double>(r.tasks);
  return r;
}

Result RunTasks(Bench& b, int tasks) {
  TaskSpec spec;
  spec.model_name = "noop";
  TaskInput in;
  in.name = "INPUT0";
  in.dtype = DataType::kFp32;
  in.shape = {1};
  in.data.assign(4, '\0');
  spec.inputs.push_back(in);
  std::vector<double> lat;
  lat.reserve(tasks);
  std::vector<TaskSpec> specs(tasks, spec);  // built before timing
  const uint64_t alloc0 = g_allocations.load();
  const auto start = SteadyClock::now();
  for (int i = 0; i < tasks; ++i) {
    const auto t0 = SteadyClock::now();
    absl::StatusOr<TaskId> id = b.scheduler->SubmitTask(std::move(specs[i]));
    lat.push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count());
    if (!id.ok()) {
      std::fprintf(stderr, "SubmitTask: %s\n", id.status().ToString().c_str());
      std::exit(1);
    }
  }
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  Result r;
  r.name = "task";
  r.tasks = static_cast<uint64_t>(tasks);
  r.p50_us = Percentile(lat, 0.50);
  r.p99_us = Percentile(lat, 0.99);
  r.tasks_per_second = static_cast<double>(tasks) / seconds;
  r.allocations_per_task =
      static_cast<double>(g_allocations.load() - alloc0) / static_cast<double>(tasks);
  return r;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name, int* out) {
      const std::string prefix = std::string("--") + name + "=";
      if (a.rfind(prefix, 0) != 0) return false;
      *out = std::atoi(a.c_str() + prefix.size());
      return true;
    };
    if (a == "--deadlock_detection") {
      f->deadlock_detection = true;
      continue;
    }
    if (a.rfind("--only=", 0) == 0) {
      f->only = a.substr(7);
      continue;
    }
    if (!value("tasks", &f->tasks) && !value("threads", &f->threads) &&
        !value("devices", &f->devices) && !value("warmup", &f->warmup)) {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return false;
    }
  }
  return f->tasks > 0 && f->threads > 0 && f->devices > 0;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  // Debian's Abseil is built without NDEBUG, which leaves absl::Mutex's
  // deadlock detection (a lock-graph update on every Lock) on; release
  // daemons turn it off the same way.
  if (!flags.deadlock_detection) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  Bench bench(flags);
  RunInfer(bench, 1, flags.warmup);  // warm caches, metric series, pools
  RunTasks(bench, flags.warmup / 4);
  std::vector<Result> results;
  if (flags.only.empty() || flags.only == "infer") {
    results.push_back(RunInfer(bench, 1, flags.tasks));
    results.push_back(RunInfer(bench, flags.threads, flags.tasks / flags.threads));
  }
  if (flags.only.empty() || flags.only == "task")
    results.push_back(RunTasks(bench, flags.tasks / 2));

  std::printf(
      "scheduler overhead, no-op model, %d host device(s), inline streams, %u cores, "
      "absl deadlock detection %s\n",
      flags.devices, std::thread::hardware_concurrency(), flags.deadlock_detection ? "on" : "off");
  std::printf("%-6s %7s %9s %9s %9s %12s %12s\n", "path", "threads", "tasks", "p50_us", "p99_us",
              "tasks/s", "allocs/task");
  for (const Result& r : results) {
    std::printf("%-6s %7d %9" PRIu64 " %9.2f %9.2f %12.0f %12.2f\n", r.name.c_str(), r.threads,
                r.tasks, r.p50_us, r.p99_us, r.tasks_per_second, r.allocations_per_task);
  }
  std::string json = "{\"bench\":\"sched\",\"results\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    absl::StrAppend(&json, i ? "," : "", "{\"path\":\"", r.name, "\",\"threads\":", r.threads,
                    ",\"tasks\":", r.tasks, ",\"p50_us\":", r.p50_us, ",\"p99_us\":", r.p99_us,
                    ",\"tasks_per_second\":", r.tasks_per_second,
                    ",\"allocations_per_task\":", r.allocations_per_task, "}");
  }
  absl::StrAppend(&json, "],\"deadlock_detection\":", flags.deadlock_detection ? "true" : "false");
  json += ",\"targets\":{\"p50_us\":5,\"tasks_per_second\":200000}}";
  std::printf("JSON %s\n", json.c_str());
  bench.scheduler->Shutdown();
  return 0;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
