// GrpcMetrics: request counters by method and code, and latency histograms
// by method, for every RPC the daemon serves. A method's series are created
// when it is first called (a method never called has none), each code's
// counter on its first call with that code; after that a call records
// through cached pointers, with no label lookup.
#ifndef INFERD_SERVER_GRPC_METRICS_H_
#define INFERD_SERVER_GRPC_METRICS_H_

#include <array>
#include <atomic>
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
  // The series of `code` (created on first use).
  prometheus::Counter* CounterFor(int code);

  GrpcMetrics* owner_ = nullptr;
  std::string method_;
  absl::Mutex mu_;  // serializes creating series
  std::atomic<prometheus::Histogram*> latency_{nullptr};
  std::array<std::atomic<prometheus::Counter*>, 17> by_code_{};
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
