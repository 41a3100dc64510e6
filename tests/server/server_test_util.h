// Helpers for the adapter tests: an in-process gRPC server over the
// services under test (no daemon, no port), and the value of a gRPC
// request counter in a prometheus registry.
#ifndef INFERD_TESTS_SERVER_SERVER_TEST_UTIL_H_
#define INFERD_TESTS_SERVER_SERVER_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "server/infer_queues.h"
#include "server/kserve_service.h"

namespace inferd::testing_server {

// Serves `services` (borrowed) in process until destroyed; a KServeService
// among them gets its ModelInfer queues (one thread).
class InProcessServer {
 public:
  explicit InProcessServer(const std::vector<grpc::Service*>& services) {
    grpc::ServerBuilder builder;
    for (grpc::Service* s : services) {
      builder.RegisterService(s);
      if (auto* kserve = dynamic_cast<KServeService*>(s); kserve != nullptr) {
        queues_ = std::make_unique<InferQueues>(builder, kserve, 1);
      }
    }
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    if (queues_ != nullptr) queues_->Start();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }
  ~InProcessServer() {
    server_->Shutdown();
    if (queues_ != nullptr) queues_->Stop();
  }
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  std::unique_ptr<InferQueues> queues_;  // destroyed after server_
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// inferd_grpc_requests_total{method, code}; 0 when the series is absent.
inline double RequestCount(prometheus::Registry& registry, const std::string& method,
                           const std::string& code) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != "inferd_grpc_requests_total") continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      bool method_ok = false, code_ok = false;
      for (const prometheus::ClientMetric::Label& l : m.label) {
        if (l.name == "method" && l.value == method) method_ok = true;
        if (l.name == "code" && l.value == code) code_ok = true;
      }
      if (method_ok && code_ok) return m.counter.value;
    }
  }
  return 0;
}

// inferd_grpc_request_duration_seconds{method}: the observation count and
// sum; {0, 0} when absent.
struct LatencySeries {
  uint64_t count = 0;
  double sum = 0;
};
inline LatencySeries Latency(prometheus::Registry& registry, const std::string& method) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != "inferd_grpc_request_duration_seconds") continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      for (const prometheus::ClientMetric::Label& l : m.label) {
        if (l.name == "method" && l.value == method) {
          return {m.histogram.sample_count, m.histogram.sample_sum};
        }
      }
    }
  }
  return {};
}

}  // namespace inferd::testing_server

#endif  // INFERD_TESTS_SERVER_SERVER_TEST_UTIL_H_
