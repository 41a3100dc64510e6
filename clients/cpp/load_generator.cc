#include "clients/cpp/load_generator.h"

#include <algorithm>
#include <functional>
#include <memory>
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

// Shared state of one run. Thread-safe.
class Run {
 public:
  explicit Run(const LoadOptions& o) : options_(o) {
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
    latencies_us_.reserve(1 << 20);
  }

  // Starts one call; `again` says whether to start another when it ends.
  void Issue(bool again) {
    struct Call {
      grpc::ClientContext ctx;
      inference::ModelInferResponse resp;
      absl::Time start;
    };
    auto* call = new Call();
    AddCallCredentials(options_.client, &call->ctx);
    call->start = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      ++outstanding_;
    }
    stub_->async()->ModelInfer(&call->ctx, &options_.request, &call->resp,
                               [this, call, again](grpc::Status st) {
                                 const double us =
                                     absl::ToDoubleMicroseconds(absl::Now() - call->start);
                                 delete call;
                                 bool next;
                                 {
                                   absl::MutexLock lock(&mu_);
                                   --outstanding_;
                                   if (measuring_) {
                                     if (st.ok()) {
                                       ++ok_;
                                       latencies_us_.push_back(us);
                                     } else {
                                       if (errors_++ == 0) first_error_ = st.error_message();
                                     }
                                   }
                                   next = again && !stop_;
                                 }
                                 if (next) Issue(true);
                               });
  }

  bool TryIssueCapped() {
    {
      absl::MutexLock lock(&mu_);
      if (outstanding_ >= options_.concurrency) {
        if (measuring_) ++dropped_;
        return false;
      }
    }
    Issue(false);
    return true;
  }

  void SetMeasuring(bool on) {
    absl::MutexLock lock(&mu_);
    measuring_ = on;
  }

  LoadResult Finish(absl::Duration measured) {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outstanding_ == 0; };
    mu_.Await(absl::Condition(&drained));
    LoadResult r;
    r.ok = ok_;
    r.errors = errors_;
    r.dropped = dropped_;
    r.first_error = first_error_;
    r.qps = static_cast<double>(ok_) / absl::ToDoubleSeconds(measured);
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [this](double p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (latencies_us_.empty()) return 0.0;
      size_t i = static_cast<size_t>(p * static_cast<double>(latencies_us_.size() - 1));
      return latencies_us_[i];
    };
    r.p50_us = pct(0.50);
    r.p90_us = pct(0.90);
    r.p99_us = pct(0.99);
    r.max_us = latencies_us_.empty() ? 0 : latencies_us_.back();
    double sum = 0;
    for (double us : latencies_us_) sum += us;
    r.mean_us = latencies_us_.empty() ? 0 : sum / static_cast<double>(latencies_us_.size());
    return r;
  }

 private:
  const LoadOptions& options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  absl::Mutex mu_;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool measuring_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t ok_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
  std::vector<double> latencies_us_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

LoadResult RunLoad(const LoadOptions& options) {
  Run run(options);
  if (options.rate <= 0) {
    for (int i = 0; i < options.concurrency; ++i) run.Issue(true);
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
