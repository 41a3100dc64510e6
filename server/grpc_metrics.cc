#include "server/grpc_metrics.h"

namespace inferd {

const char* GrpcCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK",        "CANCELLED",          "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return (i >= 0 && i < 17) ? kNames[i] : "UNKNOWN";
}

GrpcMetrics::GrpcMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("inferd_grpc_requests_total")
                    .Help("gRPC calls handled, by full method name and status code.")
                    .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("inferd_grpc_request_duration_seconds")
                   .Help("gRPC call latency from handler entry to finish, by method.")
                   .Register(registry)) {}

MethodMetrics* GrpcMetrics::ForMethod(const std::string& method) {
  absl::MutexLock lock(&mu_);
  for (auto& m : methods_) {
    if (m->method_ == method) return m.get();
  }
  auto m = std::make_unique<MethodMetrics>();
  m->owner_ = this;
  m->method_ = method;
  methods_.push_back(std::move(m));
  return methods_.back().get();
}

prometheus::Counter* MethodMetrics::CounterFor(int code) {
  const int slot = (code >= 0 && code < 17) ? code : 2;  // UNKNOWN
  prometheus::Counter* c = by_code_[slot].load(std::memory_order_acquire);
  if (c != nullptr) return c;
  absl::MutexLock lock(&mu_);
  c = by_code_[slot].load(std::memory_order_relaxed);
  if (c == nullptr) {
    c = &owner_->requests_.Add(
        {{"method", method_}, {"code", GrpcCodeName(static_cast<grpc::StatusCode>(slot))}});
    by_code_[slot].store(c, std::memory_order_release);
  }
  return c;
}

void MethodMetrics::Record(grpc::StatusCode code, absl::Duration latency) {
  prometheus::Histogram* h = latency_.load(std::memory_order_acquire);
  if (h == nullptr) {
    // Seconds from 50 µs to 30 s, as the scheduler's duration histograms.
    static const prometheus::Histogram::BucketBoundaries kBuckets = {
        5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 2.5e-2, 0.1, 0.25, 1.0, 5.0, 30.0};
    absl::MutexLock lock(&mu_);
    h = latency_.load(std::memory_order_relaxed);
    if (h == nullptr) {
      h = &owner_->latency_.Add({{"method", method_}}, kBuckets);
      latency_.store(h, std::memory_order_release);
    }
  }
  h->Observe(absl::ToDoubleSeconds(latency));
  CounterFor(static_cast<int>(code))->Increment();
}

}  // namespace inferd
