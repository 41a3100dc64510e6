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
#include "clients/cpp/tensor_helpers.h"
#include "core/config/config.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/daemon.h"

namespace inferd {
namespace {

// The baseline: answers ModelInfer by echoing inputs as outputs, nothing else.
class EchoService final : public inference::GRPCInferenceService::CallbackService {
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override {
    resp->set_model_name(req->model_name());
    resp->set_id(req->id());
    for (const auto& in : req->inputs()) {
      auto* out = resp->add_outputs();
      out->set_name("OUTPUT0");
      out->set_datatype(in.datatype());
      *out->mutable_shape() = in.shape();
    }
    *resp->mutable_raw_output_contents() = req->raw_input_contents();
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

struct Result {
  double qps = 0;
  double p50_us = 0, p99_us = 0;
  uint64_t errors = 0;
};

// Closed loop: `concurrency` calls always in flight over one channel.
Result Drive(const std::string& target, int concurrency, absl::Duration duration, int bytes) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelInferRequest req;
  req.set_model_name("identity");
  AddRawInput(&req, "INPUT0", DataType::kUint8, {bytes}, std::string(static_cast<size_t>(bytes), 'x'));

  struct Slot {
    grpc::ClientContext* ctx = nullptr;
    inference::ModelInferResponse resp;
    absl::Time start;
  };
  std::vector<Slot> slots(static_cast<size_t>(concurrency));
  std::vector<double> lat_us;
  lat_us.reserve(1 << 20);
  std::atomic<bool> measuring{false};
  absl::Mutex mu;
  int outstanding = 0;
  bool stop = false;
  uint64_t done = 0, errors = 0;

  std::function<void(size_t)> issue = [&](size_t i) {
    Slot& s = slots[i];
    delete s.ctx;
    s.ctx = new grpc::ClientContext();
    s.resp.Clear();
    s.start = absl::Now();
    stub->async()->ModelInfer(s.ctx, &req, &s.resp, [&, i](grpc::Status st) {
      const double us = absl::ToDoubleMicroseconds(absl::Now() - slots[i].start);
      bool again;
      {
        absl::MutexLock lock(&mu);
        if (measuring.load()) {
          lat_us.push_back(us);
          ++done;
          if (!st.ok()) ++errors;
        }
        again = !stop;
        if (!again) --outstanding;
      }
      if (again) issue(i);
    });
  };
  {
    absl::MutexLock lock(&mu);
    outstanding = concurrency;
  }
  for (size_t i = 0; i < slots.size(); ++i) issue(i);
  absl::SleepFor(absl::Milliseconds(500));  // warm-up
  {
    absl::MutexLock lock(&mu);
    measuring = true;
  }
  const absl::Time t0 = absl::Now();
  absl::SleepFor(duration);
  Result r;
  {
    absl::MutexLock lock(&mu);
    measuring = false;
    stop = true;
    r.qps = static_cast<double>(done) / absl::ToDoubleSeconds(absl::Now() - t0);
    r.errors = errors;
    auto drained = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return outstanding == 0; };
    mu.Await(absl::Condition(&drained));
  }
  for (auto& s : slots) delete s.ctx;
  std::sort(lat_us.begin(), lat_us.end());
  if (!lat_us.empty()) {
    r.p50_us = lat_us[lat_us.size() / 2];
    r.p99_us = lat_us[std::min(lat_us.size() - 1, lat_us.size() * 99 / 100)];
  }
  return r;
}

int Main(int argc, char** argv) {
  // As the daemon does (server/main.cc): no per-lock deadlock graph.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  double seconds = 3;
  int concurrency = 32, bytes = 64;
  bool gpu = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--seconds=")) (void)absl::SimpleAtod(a, &seconds);
    else if (absl::ConsumePrefix(&a, "--concurrency=")) (void)absl::SimpleAtoi(a, &concurrency);
    else if (absl::ConsumePrefix(&a, "--bytes=")) (void)absl::SimpleAtoi(a, &bytes);
    else if (a == "--gpu") gpu = true;
    else {
      std::fprintf(stderr, "usage: modelinfer_bench [--seconds=S] [--concurrency=N] [--bytes=B] [--gpu]\n");
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
  const absl::Duration d = absl::Seconds(seconds);
  // Alternate to spread drift: echo, inferd, echo, inferd; report the best of each.
  Result echo_r, inferd_r;
  for (int round = 0; round < 2; ++round) {
    Result e = Drive("127.0.0.1:" + std::to_string(echo_port), concurrency, d, bytes);
    Result n = Drive("127.0.0.1:" + std::to_string((*daemon)->grpc_port()), concurrency, d, bytes);
    if (e.qps > echo_r.qps) echo_r = e;
    if (n.qps > inferd_r.qps) inferd_r = n;
  }
  (*daemon)->Shutdown(absl::Seconds(5));
  echo_server->Shutdown();

  const double ratio = inferd_r.qps / echo_r.qps;
  std::printf("ModelInfer identity, %d B, concurrency %d, %.1f s x2 rounds, %s devices, %u cores\n",
              bytes, concurrency, seconds, gpu ? "GPU" : "host", std::thread::hardware_concurrency());
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
