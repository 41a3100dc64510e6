// Start-up and shutdown behaviour of the real daemon: config errors exit 2
// naming the key; SIGTERM drains in-flight calls and exits 0.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "clients/cpp/inferd_client.h"
#include "inference/grpc_service.grpc.pb.h"
#include "clients/cpp/tensor_helpers.h"
#include "gtest/gtest.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "tests/integration/daemon_process.h"
#include "tests/testing/unsent_unary_call.h"

namespace inferd {
namespace {

using testing::DaemonProcess;

struct ConfigCase {
  const char* name;
  const char* yaml;
  const char* key_path;
};

class BadConfigTest : public ::testing::TestWithParam<ConfigCase> {};

// Verifies the daemon refuses to start on each class of config error.
TEST_P(BadConfigTest, ExitsWithCode2NamingTheKey) {
  const ConfigCase& c = GetParam();
  const std::string path = testing::WriteTempFile(c.yaml);
  auto r = testing::RunCommand({testing::InferdBinary(), "--config=" + path,
                                "--grpc-listen=127.0.0.1:0", "--metrics-listen="},
                               absl::Seconds(30));
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, c.key_path)) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    Classes, BadConfigTest,
    ::testing::Values(
        ConfigCase{"UnknownKey", "server:\n  grpc_listn: 127.0.0.1:1\n", "server.grpc_listn"},
        ConfigCase{"WrongType",
                   "device:\n  multi_gpu:\n    performance_optimization:\n"
                   "      max_tasks_per_device: four\n",
                   "device.multi_gpu.performance_optimization.max_tasks_per_device"},
        ConfigCase{"OutOfRange",
                   "device:\n  multi_gpu:\n    performance_optimization:\n"
                   "      memory_gc_threshold: 1.5\n",
                   "device.multi_gpu.performance_optimization.memory_gc_threshold"},
        ConfigCase{"NegativeCooldown",
                   "device:\n  multi_gpu:\n    performance_optimization:\n"
                   "      scale_up_cooldown: -1\n",
                   "device.multi_gpu.performance_optimization.scale_up_cooldown"},
        ConfigCase{"UnknownStrategy",
                   "device:\n  multi_gpu:\n    performance_optimization:\n"
                   "      scheduling_strategy: fastest\n",
                   "device.multi_gpu.performance_optimization.scheduling_strategy"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(LifecycleTest, BadFlagExitsWithCode2) {
  // The flag's range is the config key's, [0, 64].
  for (const char* bad : {"--host-devices=abc", "--host-devices=65", "--host-devices=-1"}) {
    auto r = testing::RunCommand({testing::InferdBinary(), bad}, absl::Seconds(30));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, "is not an integer in [0, 64] (device.host_devices)"))
        << r.output;
  }
  auto zero = testing::RunCommand({testing::InferdBinary(), "--host-devices=0", "--print-config"},
                                  absl::Seconds(30));
  EXPECT_EQ(zero.exit_code, 0) << zero.output;
  auto missing = testing::RunCommand({testing::InferdBinary(), "--config=/nonexistent.yaml"},
                                     absl::Seconds(30));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
}

// Without a GPU (and its driver) the start says so in one plain line, not
// with CUDA's "driver version is insufficient".
TEST(LifecycleTest, NoGpuIsOneClearLine) {
  if (std::filesystem::exists("/proc/driver/nvidia/version")) {
    GTEST_SKIP() << "an NVIDIA driver is loaded";
  }
  DaemonProcess d({"--host-devices=0"});
  ASSERT_TRUE(d.started()) << d.Stderr();
  const std::string log = d.Stderr();
  EXPECT_FALSE(absl::StrContains(log, "insufficient")) << log;
  EXPECT_TRUE(absl::StrContains(log, "using 1 host device")) << log;
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(absl::Seconds(30)), 0);
}

TEST(LifecycleTest, ShippedConfigStartsAndHealthcheckProbes) {
  std::vector<std::string> args = testing::DeviceArgs(1);
  args.push_back("--config=" + testing::SourceDir() + "/configs/inferd.yaml");
  DaemonProcess d(args);
  ASSERT_TRUE(d.started()) << d.Stderr();
  auto probe = testing::RunCommand(
      {testing::InferdBinary(), "healthcheck", "--grpc-target=" + d.target()}, absl::Seconds(30));
  EXPECT_EQ(probe.exit_code, 0) << probe.output;
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(absl::Seconds(30)), 0) << d.Stderr();
  auto down = testing::RunCommand(
      {testing::InferdBinary(), "healthcheck", "--grpc-target=" + d.target(), "--timeout=1"},
      absl::Seconds(30));
  EXPECT_EQ(down.exit_code, 1) << down.output;
}

// Verifies that SIGTERM during a stream of requests lets in-flight calls
// complete with correct results (a call not yet accepted is refused with
// UNAVAILABLE or CANCELLED, never another error or a wrong answer), that
// health watchers see NOT_SERVING, and that the exit code is 0.
TEST(LifecycleTest, SigtermDrainsInFlightRequestsAndExitsZero) {
  DaemonProcess d(testing::DeviceArgs(2));
  ASSERT_TRUE(d.started()) << d.Stderr();
  ClientOptions o;
  o.target = d.target();
  o.max_attempts = 1;
  o.timeout = absl::Seconds(20);

  // A health watcher started before the signal.
  InferdClient watcher_client(o);
  auto health = grpc::health::v1::Health::NewStub(watcher_client.channel());
  grpc::ClientContext watch_ctx;
  grpc::health::v1::HealthCheckRequest wreq;
  wreq.set_service("inferd");
  auto watch = health->Watch(&watch_ctx, wreq);
  grpc::health::v1::HealthCheckResponse wresp;
  ASSERT_TRUE(watch->Read(&wresp));
  EXPECT_EQ(wresp.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  std::atomic<int> ok{0}, unavailable{0}, other{0};
  std::atomic<bool> stop{false};
  std::string other_message;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      InferdClient client(o);
      inference::ModelInferRequest req;
      req.set_model_name("identity");
      AddRawInput(&req, "INPUT0", DataType::kUint8, {4 << 20}, std::string(4 << 20, 'z'));
      while (!stop.load()) {
        auto resp = client.Infer(req);
        if (resp.ok()) {
          if (resp->raw_output_contents(0) != req.raw_input_contents(0)) ++other;
          ++ok;
        } else if (resp.status().code() == absl::StatusCode::kUnavailable ||
                   resp.status().code() == absl::StatusCode::kCancelled) {
          // Refused: not yet accepted when shutdown began (gRPC cancels calls
          // whose handler has not started; new streams get UNAVAILABLE).
          ++unavailable;
          break;
        } else {
          other_message = std::string(resp.status().message());
          ++other;
          break;
        }
      }
    });
  }
  while (ok.load() < 20) std::this_thread::yield();
  d.Signal(SIGTERM);
  bool saw_not_serving = false;
  while (watch->Read(&wresp)) {
    if (wresp.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING) saw_not_serving = true;
  }
  EXPECT_TRUE(saw_not_serving);
  // The clients keep sending, so the drain runs to the 20 s grace; the
  // wait allows that plus a slow, busy test machine.
  EXPECT_EQ(d.Wait(absl::Seconds(60)), 0) << d.Stderr();
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(other.load(), 0) << other_message;
  EXPECT_GE(ok.load(), 20);
  EXPECT_TRUE(absl::StrContains(d.Stderr(), "shutdown complete")) << d.Stderr();
}

// Verifies that a second signal ends the process at once even while a
// drain is waiting on a call that will not finish (a download whose client
// stopped reading), long before the configured grace.
TEST(LifecycleTest, SecondSignalExitsAtOnce) {
  const std::string config = testing::WriteTempFile("server:\n  shutdown_grace_seconds: 120\n");
  std::vector<std::string> args = testing::DeviceArgs(1);
  args.push_back("--config=" + config);
  DaemonProcess d(args);
  ASSERT_TRUE(d.started()) << d.Stderr();
  ClientOptions o;
  o.target = d.target();
  InferdClient client(o);
  auto memory = v1::Memory::NewStub(client.channel());
  grpc::ClientContext alloc_ctx;
  v1::AllocateTensorRequest alloc;
  alloc.set_datatype("UINT8");
  alloc.add_shape(256 << 20);
  v1::TensorInfo info;
  ASSERT_TRUE(memory->AllocateTensor(&alloc_ctx, alloc, &info).ok());
  // Start a download and read only its first chunk: flow control then
  // holds the call open on the server.
  grpc::ClientContext dl_ctx;
  v1::DownloadTensorRequest dl;
  dl.set_tensor_id(info.id());
  dl.set_chunk_bytes(4 << 20);
  auto reader = memory->DownloadTensor(&dl_ctx, dl);
  v1::DownloadTensorResponse first;
  ASSERT_TRUE(reader->Read(&first));

  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(absl::Seconds(2)), std::nullopt) << "exited before the drain finished";
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(absl::Seconds(20)), 128 + SIGTERM) << d.Stderr();
  EXPECT_TRUE(absl::StrContains(d.Stderr(), "second signal")) << d.Stderr();
  dl_ctx.TryCancel();
  std::remove(config.c_str());
}

// Verifies that SIGTERM waits for a ModelInfer call whose request is still
// arriving (its headers came, its message has not: a large request on a
// slow link) and answers it, instead of cancelling it once the daemon's
// own count of calls has been quiet for a moment.
TEST(LifecycleTest, SigtermWaitsForARequestStillArriving) {
  DaemonProcess d(testing::DeviceArgs(1));
  ASSERT_TRUE(d.started()) << d.Stderr();
  ClientOptions o;
  o.target = d.target();
  InferdClient client(o);
  testing::UnsentUnaryCall call(client.channel(), "/inference.GRPCInferenceService/ModelInfer");
  ASSERT_TRUE(call.started());
  // A call answered on the same connection after those headers were sent:
  // the daemon has seen them.
  auto stub = inference::GRPCInferenceService::NewStub(client.channel());
  grpc::ClientContext live_ctx;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub->ServerLive(&live_ctx, {}, &live).ok());

  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(absl::Seconds(2)), std::nullopt) << "exited with a call still arriving";
  inference::ModelInferRequest req;
  req.set_model_name("identity");
  AddRawInput(&req, "INPUT0", DataType::kUint8, {5}, "hello");
  ASSERT_TRUE(call.Send(req));
  std::string wire;
  grpc::Status status = call.Finish(&wire);
  ASSERT_TRUE(status.ok()) << status.error_message();
  inference::ModelInferResponse resp;
  ASSERT_TRUE(resp.ParseFromString(wire));
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(resp.raw_output_contents(0), "hello");
  EXPECT_EQ(d.Wait(absl::Seconds(30)), 0) << d.Stderr();
}

}  // namespace
}  // namespace inferd
