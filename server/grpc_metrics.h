// GrpcMetrics: request counters by method and code, and latency histograms
// by method, for every RPC the daemon serves. Series for the OK code are
// created up front; others on first use.
#ifndef INFERD_SERVER_GRPC_METRICS_H_
#define INFERD_SERVER_GRPC_METRICS_H_

#include <array>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace inferd {

class GrpcMetrics;

// The metrics of one method. Thread-safe.
class MethodMetrics {
 public:
  void Record(grpc::StatusCode code, absl::Duration latency);

 private:
  friend class GrpcMetrics;
  GrpcMetrics* owner_ = nullptr;
  std::string method_;
  prometheus::Histogram* latency_ = nullptr;
  absl::Mutex mu_;
  std::array<prometheus::Counter*, 17> by_code_ ABSL_GUARDED_BY(mu_) = {};
  prometheus::Counter* ok_ = nullptr;
};

// Thread-safe.
class GrpcMetrics {
 public:
  explicit GrpcMetrics(prometheus::Registry& registry);
  // Returns the metrics of `method` ("inference.GRPCInferenceService/ModelInfer"),
  // created on first call; the pointer stays valid for the GrpcMetrics' life.
  MethodMetrics* ForMethod(const std::string& method);

 private:
  friend class MethodMetrics;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<MethodMetrics>> methods_ ABSL_GUARDED_BY(mu_);
};

const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace inferd

#endif  // INFERD_SERVER_GRPC_METRICS_H_
