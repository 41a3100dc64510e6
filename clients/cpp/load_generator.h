// LoadGenerator: drives ModelInfer at a fixed concurrency (closed loop) or
// a fixed request rate (open loop) over one channel with the callback API,
// in the spirit of Triton's perf_analyzer. Used by `inferctl bench` and the
// benchmarks.
#ifndef INFERD_CLIENTS_CPP_LOAD_GENERATOR_H_
#define INFERD_CLIENTS_CPP_LOAD_GENERATOR_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "clients/cpp/inferd_client.h"
#include "inference/grpc_service.pb.h"

namespace inferd {

struct LoadOptions {
  std::string target = "127.0.0.1:50051";
  ClientOptions client;  // TLS and token (its target is not used)
  inference::ModelInferRequest request;
  int concurrency = 8;            // calls in flight (closed loop), or the cap (rate mode)
  double rate = 0;                // requests/s; 0 = closed loop
  absl::Duration warmup = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(5);
  int max_message_bytes = 64 << 20;
};

struct LoadResult {
  double qps = 0;
  double mean_us = 0, p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;
  uint64_t ok = 0, errors = 0, dropped = 0;  // dropped: rate mode, cap reached
  std::string first_error;
};

// Runs the load and returns the measured window's figures. Thread-compatible.
LoadResult RunLoad(const LoadOptions& options);

// A human table line and a JSON object for one result.
std::string FormatLoadResultRow(const std::string& label, const LoadResult& r);
std::string LoadResultJson(const LoadResult& r);

}  // namespace inferd

#endif  // INFERD_CLIENTS_CPP_LOAD_GENERATOR_H_
