// ModelInfer throughput and latency of the real daemon (in process, host or
// GPU devices) against a bare gRPC echo of the same KServe messages, served
// the same way (callback API) and driven by the same closed-loop client, in
// one run. Prints a table, the ratio, and a JSON line.
//
//   modelinfer_bench [--seconds=3] [--concurrency=32] [--bytes=64] [--gpu]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "clients/cpp/load_generator.h"
#include "clients/cpp/tensor_helpers.h"
#include "core/config/config.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/daemon.h"
#include "tests/bench/infer/echo_service.h"

namespace inferd {
namespace {

int Main(int argc, char** argv) {
  // As the daemon does (server/main.cc): no per-lock deadlock graph.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  double seconds = 3;
  int concurrency = 32, bytes = 64, rounds = 5;
  bool gpu = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--seconds=")) (void)absl::SimpleAtod(a, &seconds);
    else if (absl::ConsumePrefix(&a, "--concurrency=")) (void)absl::SimpleAtoi(a, &concurrency);
    else if (absl::ConsumePrefix(&a, "--bytes=")) (void)absl::SimpleAtoi(a, &bytes);
    else if (absl::ConsumePrefix(&a, "--rounds=")) (void)absl::SimpleAtoi(a, &rounds);
    else if (a == "--gpu") gpu = true;
    else {
      std::fprintf(stderr, "usage: modelinfer_bench [--seconds=S] [--concurrency=N] [--bytes=B] [--rounds=R] [--gpu]\n");
      return 2;
    }
  }
  // Baseline server.
  EchoService echo;
  int echo_port = 0;
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &echo_port);
  b.RegisterService(&echo);
  auto echo_server = b.BuildAndStart();

  Config config;
  config.server.grpc_listen = "127.0.0.1:0";
  config.server.metrics_listen = "";
  config.server.log_level = "warning";
  config.device.host_devices = gpu ? 0 : 1;
  auto daemon = Daemon::Start(config);
  if (!daemon.ok()) {
    std::fprintf(stderr, "daemon: %s\n", std::string(daemon.status().message()).c_str());
    return 1;
  }
  LoadOptions load;
  load.concurrency = concurrency;
  load.warmup = absl::Milliseconds(500);
  load.duration = absl::Seconds(seconds);
  load.request.set_model_name("identity");
  AddRawInput(&load.request, "INPUT0", DataType::kUint8, {bytes},
              std::string(static_cast<size_t>(bytes), 'x'));
  // Alternate to spread drift (echo, inferd, echo, inferd, ...) and report
  // the best of each: on a shared machine one round is often disturbed.
  LoadResult echo_r, inferd_r;
  for (int round = 0; round < std::max(1, rounds); ++round) {
    load.target = "127.0.0.1:" + std::to_string(echo_port);
    LoadResult e = RunLoad(load);
    load.target = "127.0.0.1:" + std::to_string((*daemon)->grpc_port());
    LoadResult n = RunLoad(load);
    if (e.qps > echo_r.qps) echo_r = e;
    if (n.qps > inferd_r.qps) inferd_r = n;
  }
  (*daemon)->Shutdown(absl::Seconds(5));
  echo_server->Shutdown();

  const double ratio = inferd_r.qps / echo_r.qps;
  std::printf("ModelInfer identity, %d B, concurrency %d, %.1f s x%d rounds, %s devices, %u cores\n",
              bytes, concurrency, seconds, rounds, gpu ? "GPU" : "host",
              std::thread::hardware_concurrency());
  std::printf("%-22s %12s %10s %10s %8s\n", "server", "QPS", "p50 us", "p99 us", "errors");
  std::printf("%-22s %12.0f %10.1f %10.1f %8lu\n", "bare gRPC echo", echo_r.qps, echo_r.p50_us,
              echo_r.p99_us, static_cast<unsigned long>(echo_r.errors));
  std::printf("%-22s %12.0f %10.1f %10.1f %8lu\n", "inferd ModelInfer", inferd_r.qps,
              inferd_r.p50_us, inferd_r.p99_us, static_cast<unsigned long>(inferd_r.errors));
  std::printf("ratio inferd/echo QPS: %.3f\n", ratio);
  std::printf(
      "{\"bench\":\"modelinfer_identity\",\"bytes\":%d,\"concurrency\":%d,\"devices\":\"%s\","
      "\"echo_qps\":%.0f,\"echo_p50_us\":%.1f,\"echo_p99_us\":%.1f,\"inferd_qps\":%.0f,"
      "\"inferd_p50_us\":%.1f,\"inferd_p99_us\":%.1f,\"ratio\":%.3f}\n",
      bytes, concurrency, gpu ? "gpu" : "host", echo_r.qps, echo_r.p50_us, echo_r.p99_us,
      inferd_r.qps, inferd_r.p50_us, inferd_r.p99_us, ratio);
  return (inferd_r.errors + echo_r.errors) == 0 ? 0 : 1;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
