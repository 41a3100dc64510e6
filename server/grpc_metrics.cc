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
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
      50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0,  10.0};
  m->latency_ = &latency_.Add({{"method", method}}, kBuckets);
  m->ok_ = &requests_.Add({{"method", method}, {"code", "OK"}});
  methods_.push_back(std::move(m));
  return methods_.back().get();
}

void MethodMetrics::Record(grpc::StatusCode code, absl::Duration latency) {
  latency_->Observe(absl::ToDoubleSeconds(latency));
  if (code == grpc::StatusCode::OK) {
    ok_->Increment();
    return;
  }
  const int i = static_cast<int>(code);
  prometheus::Counter* c;
  {
    absl::MutexLock lock(&mu_);
    const int slot = (i >= 0 && i < 17) ? i : 2;
    c = by_code_[slot];
    if (c == nullptr) {
      c = &owner_->requests_.Add({{"method", method_}, {"code", GrpcCodeName(code)}});
      by_code_[slot] = c;
    }
  }
  c->Increment();
}

}  // namespace inferd
