#include "clients/cpp/load_generator.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"

namespace inferd {
namespace {

// Counters of one run, shared with the calls' callbacks so that a callback
// finishing after the run has returned (it still unlocks the mutex) touches
// memory that is alive.
struct Tally {
  absl::Mutex mu;
  int outstanding ABSL_GUARDED_BY(mu) = 0;
  bool measuring ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
  uint64_t ok ABSL_GUARDED_BY(mu) = 0;
  uint64_t errors ABSL_GUARDED_BY(mu) = 0;
  uint64_t dropped ABSL_GUARDED_BY(mu) = 0;
  std::string first_error ABSL_GUARDED_BY(mu);
  std::vector<double> latencies_us ABSL_GUARDED_BY(mu);
};

// One run. Thread-safe.
class Run {
 public:
  explicit Run(const LoadOptions& o) : options_(o), tally_(std::make_shared<Tally>()) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(o.max_message_bytes);
    args.SetMaxSendMessageSize(o.max_message_bytes);
    // Its own connection: concurrent runs against one target (several
    // clients in one process) do not share a subchannel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto creds = ChannelCredentialsFor(o.client, &args);
    channel_ = grpc::CreateCustomChannel(
        o.target, creds.ok() ? *creds : grpc::InsecureChannelCredentials(), args);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
    absl::MutexLock lock(&tally_->mu);
    tally_->latencies_us.reserve(1 << 20);
  }

  // Starts one call; `again` says whether to start another when it ends.
  void Start(bool again) {
    {
      absl::MutexLock lock(&tally_->mu);
      ++tally_->outstanding;
    }
    Issue(again);
  }

  bool TryIssueCapped() {
    {
      absl::MutexLock lock(&tally_->mu);
      if (tally_->outstanding >= options_.concurrency) {
        if (tally_->measuring) ++tally_->dropped;
        return false;
      }
      ++tally_->outstanding;
    }
    Issue(false);
    return true;
  }

  void SetMeasuring(bool on) {
    absl::MutexLock lock(&tally_->mu);
    tally_->measuring = on;
  }

  LoadResult Finish(absl::Duration measured) {
    Tally& t = *tally_;
    absl::MutexLock lock(&t.mu);
    t.stop = true;
    auto drained = [&t]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) { return t.outstanding == 0; };
    t.mu.Await(absl::Condition(&drained));
    LoadResult r;
    r.ok = t.ok;
    r.errors = t.errors;
    r.dropped = t.dropped;
    r.first_error = t.first_error;
    r.qps = static_cast<double>(t.ok) / absl::ToDoubleSeconds(measured);
    std::vector<double> lat;
    lat.swap(t.latencies_us);  // the run is over: no callback adds to it
    std::sort(lat.begin(), lat.end());
    auto pct = [&lat](double p) {
      if (lat.empty()) return 0.0;
      size_t i = static_cast<size_t>(p * static_cast<double>(lat.size() - 1));
      return lat[i];
    };
    r.p50_us = pct(0.50);
    r.p90_us = pct(0.90);
    r.p99_us = pct(0.99);
    r.max_us = lat.empty() ? 0 : lat.back();
    double sum = 0;
    for (double us : lat) sum += us;
    r.mean_us = lat.empty() ? 0 : sum / static_cast<double>(lat.size());
    return r;
  }

 private:
  // Sends one call counted in `outstanding`. Its callback either passes
  // that count on to the next call (closed loop, not stopping) or gives it
  // back; once given back it touches only the shared tally, so Finish may
  // return and the Run end while the callback is still unlocking.
  void Issue(bool again) {
    struct Call {
      grpc::ClientContext ctx;
      inference::ModelInferResponse resp;
      absl::Time start;
    };
    auto* call = new Call();
    AddCallCredentials(options_.client, &call->ctx);
    call->start = absl::Now();
    stub_->async()->ModelInfer(
        &call->ctx, &options_.request, &call->resp,
        [this, tally = tally_, call, again](grpc::Status st) {
          const double us = absl::ToDoubleMicroseconds(absl::Now() - call->start);
          delete call;
          bool next;
          {
            absl::MutexLock lock(&tally->mu);
            if (tally->measuring) {
              if (st.ok()) {
                ++tally->ok;
                tally->latencies_us.push_back(us);
              } else {
                if (tally->errors++ == 0) tally->first_error = st.error_message();
              }
            }
            next = again && !tally->stop;
            if (!next) --tally->outstanding;
          }
          if (next) Issue(true);  // still counted: the Run waits for it
        });
  }

  const LoadOptions& options_;
  const std::shared_ptr<Tally> tally_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

}  // namespace

LoadResult RunLoad(const LoadOptions& options) {
  Run run(options);
  if (options.rate <= 0) {
    for (int i = 0; i < options.concurrency; ++i) run.Start(true);
    absl::SleepFor(options.warmup);
    run.SetMeasuring(true);
    const absl::Time t0 = absl::Now();
    absl::SleepFor(options.duration);
    run.SetMeasuring(false);
    return run.Finish(absl::Now() - t0);
  }
  // Open loop: a pacing thread (this one) sends on a fixed schedule.
  const absl::Duration interval = absl::Seconds(1.0 / options.rate);
  absl::Time next = absl::Now();
  const absl::Time measure_at = next + options.warmup;
  const absl::Time end = measure_at + options.duration;
  bool measuring = false;
  while (next < end) {
    if (!measuring && next >= measure_at) {
      run.SetMeasuring(true);
      measuring = true;
    }
    run.TryIssueCapped();
    next += interval;
    absl::SleepFor(next - absl::Now());  // pacing, not polling
  }
  run.SetMeasuring(false);
  return run.Finish(options.duration);
}

std::string FormatLoadResultRow(const std::string& label, const LoadResult& r) {
  return absl::StrFormat("%-24s %10.0f %9.1f %9.1f %9.1f %9.1f %8d", label, r.qps, r.p50_us,
                         r.p90_us, r.p99_us, r.max_us, r.errors);
}

std::string LoadResultJson(const LoadResult& r) {
  return absl::StrFormat(
      "{\"qps\":%.1f,\"mean_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
      "\"ok\":%d,\"errors\":%d,\"dropped\":%d,\"first_error\":\"%s\"}",
      r.qps, r.mean_us, r.p50_us, r.p90_us, r.p99_us, r.max_us, r.ok, r.errors, r.dropped,
      absl::CEscape(r.first_error));
}

}  // namespace inferd
