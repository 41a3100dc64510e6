// batch_ceiling_server: the most any gRPC server could serve a batching
// model with, on this host and from these clients, given the model's GPU
// time per batch size. It answers KServe ModelInfer like a bare echo (each
// input back as an output, filled on arrival by gRPC's own thread), but
// holds every call until a simulated GPU has "run" the batch it joined:
// batches form from the calls queued (at most --max-rows; at least
// --min-rows unless the oldest has waited --delay-us), up to --executions
// of them are dispatched at once, and they run one after another on one
// GPU taking the time --gpu-ms gives for their rows. No scheduler, no
// model, no copies beyond the echo's: what it serves is the ceiling the
// front end (gRPC, the clients, the host's cores) leaves a batching server
// with that GPU time, measured with the same clients as the daemon.
//
//   batch_ceiling_server --listen=127.0.0.1:50183 --gpu-ms=64:1.16,128:2.19
//       [--max-rows=128] [--min-rows=1] [--delay-us=200] [--executions=2]
//       [--finish-threads=4]
//
// --gpu-ms: "ROWS:MS,..." ascending; a batch of n rows takes the time of
// the first entry with ROWS >= n (the GEMM's staircase), beyond the last
// entry that entry's time scaled by n / ROWS. Serves until SIGTERM or
// SIGINT, then prints one JSON line: requests, batches, mean rows and the
// simulated GPU's busy fraction.
#include <signal.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "inference/grpc_service.grpc.pb.h"
#include "tests/bench/infer/echo_service.h"

namespace {

using inferd::FillEchoResponse;

struct Options {
  std::string listen = "127.0.0.1:50183";
  std::vector<std::pair<int, absl::Duration>> gpu;  // rows ascending
  int max_rows = 128;
  int min_rows = 1;
  absl::Duration delay = absl::Microseconds(200);
  int executions = 2;
  int finish_threads = 4;
};

// The simulated GPU time of a batch of `rows`.
absl::Duration GpuTime(const Options& o, int rows) {
  for (const auto& [r, t] : o.gpu) {
    if (rows <= r) return t;
  }
  const auto& [r, t] = o.gpu.back();
  return t * rows / r;
}

// Threads that call Finish on held calls, so that a finished batch's
// responses are sent by several threads at once (as the daemon sends a
// batch's responses from its front end's threads).
class Finishers {
 public:
  explicit Finishers(int n) : queues_(static_cast<size_t>(std::max(n, 0))) {
    for (size_t i = 0; i < queues_.size(); ++i) {
      threads_.emplace_back([this, i] { Run(queues_[i]); });
    }
  }
  ~Finishers() {
    for (Queue& q : queues_) {
      absl::MutexLock l(&q.mu);
      q.stop = true;
    }
    for (auto& t : threads_) t.join();
  }

  // Finishes `calls` split into contiguous shares, one per thread (inline
  // without threads).
  void Finish(std::vector<grpc::ServerUnaryReactor*> calls) {
    if (queues_.empty()) {
      for (auto* r : calls) r->Finish(grpc::Status::OK);
      return;
    }
    const size_t n = queues_.size(), share = (calls.size() + n - 1) / n;
    for (size_t i = 0; i < n && i * share < calls.size(); ++i) {
      Queue& q = queues_[next_++ % n];
      absl::MutexLock l(&q.mu);
      q.calls.insert(q.calls.end(), calls.begin() + static_cast<long>(i * share),
                     calls.begin() + static_cast<long>(std::min(calls.size(), (i + 1) * share)));
    }
  }

 private:
  struct Queue {
    absl::Mutex mu;
    std::vector<grpc::ServerUnaryReactor*> calls ABSL_GUARDED_BY(mu);
    bool stop ABSL_GUARDED_BY(mu) = false;
  };

  static void Run(Queue& q) {
    std::vector<grpc::ServerUnaryReactor*> mine;
    for (;;) {
      {
        absl::MutexLock l(&q.mu);
        q.mu.Await(absl::Condition(
            +[](Queue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu) {
              return q->stop || !q->calls.empty();
            },
            &q));
        if (q.calls.empty()) return;
        mine.swap(q.calls);
      }
      for (auto* r : mine) r->Finish(grpc::Status::OK);
      mine.clear();
    }
  }

  std::deque<Queue> queues_;  // deque: Queue holds a mutex (not movable)
  std::vector<std::thread> threads_;
  size_t next_ = 0;  // the timer thread's alone
};

class CeilingService final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit CeilingService(Options o)
      : o_(std::move(o)), finishers_(o_.finish_threads), timer_([this] { Timer(); }) {}
  ~CeilingService() override { Stop(); }

  // Answers every held call (UNAVAILABLE for those not yet in a batch) and
  // takes no more.
  void Stop() {
    {
      absl::MutexLock l(&mu_);
      if (stop_) return;
      stop_ = true;
      cv_.Signal();
    }
    timer_.join();
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override {
    FillEchoResponse(*req, resp);
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    absl::MutexLock l(&mu_);
    if (stop_) {
      r->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
      return r;
    }
    const absl::Time now = absl::Now();
    queue_.push_back({r, now});
    ++requests_;
    // Dispatch here when the rule allows (no wake-up for it); the timer
    // thread is woken only when its next deadline may have moved: a batch
    // dispatched, or a first call queued (its delay).
    const size_t running = running_.size();
    DispatchLocked(now);
    if (running_.size() != running || queue_.size() == 1) cv_.Signal();
    return r;
  }

  // {"requests":…, "batches":…, "mean_rows":…, "gpu_busy":…} since start.
  std::string Summary() {
    absl::MutexLock l(&mu_);
    const double wall = absl::ToDoubleSeconds(absl::Now() - started_);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"label\":\"heavy_ceiling\",\"requests\":%llu,\"batches\":%llu,"
                  "\"mean_rows\":%.1f,\"gpu_busy\":%.3f}",
                  static_cast<unsigned long long>(requests_),
                  static_cast<unsigned long long>(batches_),
                  batches_ ? static_cast<double>(rows_) / static_cast<double>(batches_) : 0.0,
                  wall > 0 ? absl::ToDoubleSeconds(busy_) / wall : 0.0);
    return buf;
  }

 private:
  struct Held {
    grpc::ServerUnaryReactor* reactor;
    absl::Time arrived;
  };
  struct Batch {
    std::vector<grpc::ServerUnaryReactor*> calls;
    absl::Time end;
  };

  // Forms and dispatches every batch the rule allows now.
  void DispatchLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (running_.size() < static_cast<size_t>(o_.executions) && !queue_.empty()) {
      const bool full = queue_.size() >= static_cast<size_t>(o_.min_rows);
      if (!full && now - queue_.front().arrived < o_.delay) return;
      const size_t n = std::min(queue_.size(), static_cast<size_t>(o_.max_rows));
      Batch b;
      b.calls.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        b.calls.push_back(queue_.front().reactor);
        queue_.pop_front();
      }
      const absl::Duration t = GpuTime(o_, static_cast<int>(n));
      b.end = std::max(now, gpu_free_) + t;
      gpu_free_ = b.end;
      busy_ += t;
      ++batches_;
      rows_ += n;
      running_.push_back(std::move(b));
    }
  }

  // The simulated GPU: dispatches batches, and finishes each at its end.
  void Timer() {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake on time, not 50 µs late
    absl::MutexLock l(&mu_);
    started_ = absl::Now();
    while (!stop_) {
      const absl::Time now = absl::Now();
      std::vector<Batch> done;
      while (!running_.empty() && running_.front().end <= now) {
        done.push_back(std::move(running_.front()));
        running_.pop_front();
      }
      DispatchLocked(now);
      if (!done.empty()) {
        mu_.Unlock();
        for (Batch& b : done) finishers_.Finish(std::move(b.calls));
        mu_.Lock();
        continue;
      }
      // Next: the first batch's end, or the oldest call's delay when an
      // execution is free (arrivals signal when they change either).
      absl::Time next = absl::InfiniteFuture();
      if (!running_.empty()) next = running_.front().end;
      if (running_.size() < static_cast<size_t>(o_.executions) && !queue_.empty()) {
        next = std::min(next, queue_.front().arrived + o_.delay);
      }
      if (next == absl::InfiniteFuture()) {
        cv_.Wait(&mu_);
      } else {
        cv_.WaitWithDeadline(&mu_, next);
      }
    }
    for (Batch& b : running_) finishers_.Finish(std::move(b.calls));
    running_.clear();
    for (const Held& h : queue_) {
      h.reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    }
    queue_.clear();
  }

  const Options o_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Held> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<Batch> running_ ABSL_GUARDED_BY(mu_);
  absl::Time gpu_free_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time started_ ABSL_GUARDED_BY(mu_);
  absl::Duration busy_ ABSL_GUARDED_BY(mu_);
  uint64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rows_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  Finishers finishers_;
  std::thread timer_;
};

bool ParseGpu(absl::string_view s, Options* o) {
  for (absl::string_view e : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(e, ':');
    int rows = 0;
    double ms = 0;
    if (!absl::SimpleAtoi(kv.first, &rows) || !absl::SimpleAtod(kv.second, &ms) || rows <= 0 ||
        ms < 0 || (!o->gpu.empty() && rows <= o->gpu.back().first)) {
      return false;
    }
    o->gpu.emplace_back(rows, absl::Microseconds(ms * 1e3));
  }
  return !o->gpu.empty();
}

int Main(int argc, char** argv) {
  Options o;
  bool ok = true;
  for (int i = 1; i < argc && ok; ++i) {
    absl::string_view a = argv[i];
    double us = 0;
    if (absl::ConsumePrefix(&a, "--listen=")) o.listen = std::string(a);
    else if (absl::ConsumePrefix(&a, "--gpu-ms=")) ok = ParseGpu(a, &o);
    else if (absl::ConsumePrefix(&a, "--max-rows=")) ok = absl::SimpleAtoi(a, &o.max_rows) && o.max_rows > 0;
    else if (absl::ConsumePrefix(&a, "--min-rows=")) ok = absl::SimpleAtoi(a, &o.min_rows) && o.min_rows > 0;
    else if (absl::ConsumePrefix(&a, "--executions=")) ok = absl::SimpleAtoi(a, &o.executions) && o.executions > 0;
    else if (absl::ConsumePrefix(&a, "--finish-threads=")) ok = absl::SimpleAtoi(a, &o.finish_threads) && o.finish_threads >= 0;
    else if (absl::ConsumePrefix(&a, "--delay-us=")) {
      ok = absl::SimpleAtod(a, &us) && us >= 0;
      o.delay = absl::Microseconds(us);
    } else ok = false;
  }
  if (!ok || o.gpu.empty()) {
    std::fprintf(stderr,
                 "usage: batch_ceiling_server --gpu-ms=ROWS:MS,... [--listen=HOST:PORT] "
                 "[--max-rows=128] [--min-rows=1] [--delay-us=200] [--executions=2] "
                 "[--finish-threads=4]\n");
    return 2;
  }
  // SIGTERM/SIGINT are taken by sigwait below, on this thread only.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  grpc::EnableDefaultHealthCheckService(true);
  CeilingService service(o);
  grpc::ServerBuilder b;
  b.AddListeningPort(o.listen, grpc::InsecureServerCredentials());
  b.SetMaxReceiveMessageSize(64 << 20);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "batch_ceiling_server: cannot listen on %s\n", o.listen.c_str());
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus("inferd", true);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  service.Stop();
  std::printf("%s\n", service.Summary().c_str());
  std::fflush(stdout);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
