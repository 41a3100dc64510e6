// The real daemon against hostile input (issue 14): bounded error echoes,
// undecodable requests, host-result limits, BYTES layouts checked when
// stored, one daemon per port, bounded watch streams, a metrics port that
// slow clients cannot block, and a shutdown that answers every call in
// flight. docs/SECURITY.md lists the limits these tests hold the daemon to.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "clients/cpp/inferd_client.h"
#include "clients/cpp/tensor_helpers.h"
#include "gtest/gtest.h"
#include "grpcpp/generic/generic_stub.h"
#include "inferd/v1/communication.grpc.pb.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "inferd/v1/scaling.grpc.pb.h"
#include "inferd/v1/scheduler.grpc.pb.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

// Small limits so the tests reach them cheaply.
constexpr char kConfig[] =
    "server:\n"
    "  max_send_message_bytes: 2097152\n"
    "  metrics_threads: 2\n"
    "  metrics_request_timeout_seconds: 1\n"
    "device:\n"
    "  host_memory_mb: 256\n"
    "  multi_gpu:\n"
    "    performance_optimization:\n"
    "      memory_pool_size_mb: 16\n"
    "limits:\n"
    "  max_watch_streams: 2\n";

class HardeningIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new testing::ConfiguredDaemon(kConfig, 2);
    ASSERT_TRUE(daemon_->process().started()) << daemon_->process().Stderr();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(daemon_->Stop(), 0) << daemon_->process().Stderr();
    delete daemon_;
  }
  void SetUp() override {
    ClientOptions o;
    o.target = daemon_->process().target();
    o.max_attempts = 1;
    client_ = std::make_unique<InferdClient>(o);
  }
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return ctx;
  }
  // Sends `payload` as the raw request of `method` and returns the status.
  grpc::Status RawCall(const std::string& method, const std::string& payload) {
    grpc::GenericStub stub(client_->channel());
    grpc::Slice slice(payload);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    auto ctx = Ctx();
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(ctx.get(), method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    return status;
  }
  v1::TensorInfo Allocate(const std::string& dtype, std::vector<int64_t> shape,
                          uint64_t byte_size = 0) {
    auto memory = v1::Memory::NewStub(client_->channel());
    v1::AllocateTensorRequest req;
    req.set_device(0);
    req.set_datatype(dtype);
    for (int64_t d : shape) req.add_shape(d);
    req.set_byte_size(byte_size);
    v1::TensorInfo info;
    grpc::Status st = memory->AllocateTensor(Ctx().get(), req, &info);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return info;
  }

  static testing::ConfiguredDaemon* daemon_;
  std::unique_ptr<InferdClient> client_;
};

testing::ConfiguredDaemon* HardeningIntegrationTest::daemon_ = nullptr;

// Verifies that an 8 MiB model name comes back as a short NOT_FOUND, and
// that replies to long names leave other calls on the connection alone (a
// ~10 KB echo used to exceed the client's metadata limit and break them).
TEST_F(HardeningIntegrationTest, ErrorsEchoInputBoundedAndTheConnectionStaysUsable) {
  inference::ModelReadyRequest req;
  req.set_name(std::string(8 << 20, 'n'));
  inference::ModelReadyResponse resp;
  grpc::Status st = client_->kserve().ModelReady(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "model_name")) << st.error_message();
  EXPECT_LT(st.error_message().size(), 1024u);
  for (int i = 0; i < 50; ++i) {
    inference::ModelMetadataRequest m;
    m.set_name(std::string(10 << 10, 'a'));
    m.set_version(std::string(10 << 10, 'v'));
    inference::ModelMetadataResponse mr;
    EXPECT_EQ(client_->kserve().ModelMetadata(Ctx().get(), m, &mr).error_code(),
              grpc::StatusCode::NOT_FOUND);
    absl::StatusOr<bool> health = client_->Health();
    ASSERT_TRUE(health.ok()) << health.status();
    EXPECT_TRUE(*health);
  }
}

// Verifies that a request gRPC cannot parse gets INVALID_ARGUMENT saying so
// (it was UNIMPLEMENTED with no message), and that the log does not grow a
// line per such request.
TEST_F(HardeningIntegrationTest, UndecodableRequestsAreInvalidArgumentAndLoggedOnce) {
  grpc::Status garbage = RawCall("/inference.GRPCInferenceService/ModelReady", "\xff\xff\xff");
  EXPECT_EQ(garbage.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(garbage.error_message(), "could not be parsed"))
      << garbage.error_message();
  // ModelInfer arrives on the daemon's own completion queues, as bytes.
  grpc::Status infer = RawCall("/inference.GRPCInferenceService/ModelInfer", "\xff\xff\xff");
  EXPECT_EQ(infer.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(infer.error_message(), "could not be parsed as the request "
                                                        "message of /inference.GRPCInferenceService/"
                                                        "ModelInfer"))
      << infer.error_message();
  // name = "\xc3\x28": invalid UTF-8 in a string field.
  const std::string bad_utf8("\x0a\x02\xc3\x28", 4);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(RawCall("/inference.GRPCInferenceService/ModelReady", bad_utf8).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  const std::string log = daemon_->process().Stderr();
  size_t lines = 0;
  for (size_t at = log.find("invalid UTF-8"); at != std::string::npos;
       at = log.find("invalid UTF-8", at + 1)) {
    ++lines;
  }
  EXPECT_LE(lines, 2u) << log;
}

// Verifies that health answers for each served service's full name.
TEST_F(HardeningIntegrationTest, HealthKnowsEveryServedService) {
  for (const char* name : {"inference.GRPCInferenceService", "inferd.v1.Memory",
                           "inferd.v1.Scheduler", "inferd.v1.Communication", "inferd"}) {
    absl::StatusOr<bool> serving = client_->Health(name);
    ASSERT_TRUE(serving.ok()) << name << ": " << serving.status();
    EXPECT_TRUE(*serving) << name;
  }
  absl::StatusOr<bool> unknown = client_->Health(std::string(100000, 'x'));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_LT(unknown.status().message().size(), 1024u);
}

// Verifies limits.max_dims for allocations and the scaler's shortest
// evaluation interval over RPC.
TEST_F(HardeningIntegrationTest, AllocationRankAndEvaluationIntervalAreBounded) {
  auto memory = v1::Memory::NewStub(client_->channel());
  v1::AllocateTensorRequest req;
  req.set_datatype("UINT8");
  for (int i = 0; i < 65; ++i) req.add_shape(1);
  v1::TensorInfo info;
  grpc::Status st = memory->AllocateTensor(Ctx().get(), req, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "limits.max_dims")) << st.error_message();

  auto scaling = v1::Scaling::NewStub(client_->channel());
  v1::GetScalingPolicyResponse current;
  ASSERT_TRUE(
      scaling->GetScalingPolicy(Ctx().get(), v1::GetScalingPolicyRequest(), &current).ok());
  v1::SetScalingPolicyRequest set;
  *set.mutable_policy() = current.policy();
  set.mutable_policy()->set_evaluation_interval_seconds(1e-9);
  v1::SetScalingPolicyResponse set_resp;
  st = scaling->SetScalingPolicy(Ctx().get(), set, &set_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "evaluation_interval")) << st.error_message();
}

// Verifies the size check on every path to the host (dst_device -1 used to
// skip it, and WaitTransfer then failed with the data lost). The bound on
// unfetched results is TransferEngineTest.UnfetchedHostResultsAreBounded...
TEST_F(HardeningIntegrationTest, TransfersToTheHostAreBoundedOnEveryPath) {
  auto comm = v1::Communication::NewStub(client_->channel());
  const v1::TensorInfo big = Allocate("UINT8", {4 << 20});
  for (bool to_host : {false, true}) {
    v1::AsyncTransferRequest req;
    req.set_tensor_id(big.id());
    if (to_host) {
      req.set_to_host(true);
    } else {
      req.set_dst_device(-1);
    }
    v1::AsyncTransferResponse resp;
    grpc::Status st = comm->AsyncTransfer(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << to_host;
    EXPECT_TRUE(absl::StrContains(st.error_message(), "server.max_send_message_bytes"))
        << st.error_message();
  }
}

// Verifies that BYTES data is checked when stored: an upload whose element
// length passes the end, and inline bytes "ff ff ff ff", are refused; a
// BYTES tensor never written cannot feed a task.
TEST_F(HardeningIntegrationTest, MalformedBytesAreRefusedWhenStored) {
  auto memory = v1::Memory::NewStub(client_->channel());
  {
    v1::TensorInfo info;
    auto ctx = Ctx();
    auto writer = memory->UploadTensor(ctx.get(), &info);
    v1::UploadTensorRequest header;
    header.mutable_header()->set_datatype("BYTES");
    header.mutable_header()->add_shape(1);
    header.mutable_header()->set_byte_size(8);
    ASSERT_TRUE(writer->Write(header));
    v1::UploadTensorRequest chunk;
    chunk.set_chunk(std::string("\x00\x90\xd0\x03" "abcd", 8));  // length 64,000,000
    writer->Write(chunk);
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "64000000")) << st.error_message();
  }
  auto comm = v1::Communication::NewStub(client_->channel());
  v1::AsyncTransferRequest inline_req;
  inline_req.mutable_inline_tensor()->set_datatype("BYTES");
  inline_req.mutable_inline_tensor()->add_shape(1);
  inline_req.mutable_inline_tensor()->set_data(std::string(4, '\xff'));
  inline_req.set_dst_device(0);
  v1::AsyncTransferResponse resp;
  EXPECT_EQ(comm->AsyncTransfer(Ctx().get(), inline_req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  const v1::TensorInfo unwritten = Allocate("BYTES", {1}, 8);
  auto sched = v1::Scheduler::NewStub(client_->channel());
  v1::SubmitTaskRequest task;
  task.mutable_task()->set_model_name("identity");
  auto* in = task.mutable_task()->add_inputs();
  in->set_name("INPUT0");
  in->set_tensor_id(unwritten.id());
  v1::SubmitTaskResponse task_resp;
  grpc::Status st = sched->SubmitTask(Ctx().get(), task, &task_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "BYTES")) << st.error_message();
}

// Verifies limits.max_watch_streams: a third WatchTasks stream is refused.
TEST_F(HardeningIntegrationTest, WatchStreamsAreLimited) {
  auto sched = v1::Scheduler::NewStub(client_->channel());
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchTasksResponse>>> streams;
  for (int i = 0; i < 2; ++i) {
    contexts.push_back(Ctx());
    streams.push_back(sched->WatchTasks(contexts.back().get(), v1::WatchTasksRequest()));
  }
  // A task's events reach both, so both are registered.
  v1::SubmitTaskRequest task;
  task.mutable_task()->set_model_name("identity");
  auto* t = task.mutable_task()->add_inputs()->mutable_tensor();
  task.mutable_task()->mutable_inputs(0)->set_name("INPUT0");
  t->set_datatype("FP32");
  t->add_shape(1);
  t->set_data(std::string(4, '\0'));
  // A stream is registered some time after the call starts: tasks are
  // submitted until each stream has seen an event, so neither waits for
  // one that fired before it was registered.
  std::atomic<bool> seen_by_all{false};
  std::thread submitter([&] {
    while (!seen_by_all.load()) {
      v1::SubmitTaskResponse submitted;
      if (!sched->SubmitTask(Ctx().get(), task, &submitted).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  bool read_all = true;
  for (auto& s : streams) {
    v1::WatchTasksResponse event;
    read_all = read_all && s->Read(&event);
  }
  seen_by_all = true;
  submitter.join();
  ASSERT_TRUE(read_all);
  auto ctx = Ctx();
  auto third = sched->WatchTasks(ctx.get(), v1::WatchTasksRequest());
  v1::WatchTasksResponse event;
  EXPECT_FALSE(third->Read(&event));
  grpc::Status st = third->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "limits.max_watch_streams"))
      << st.error_message();
  for (auto& c : contexts) c->TryCancel();
  for (auto& s : streams) (void)s->Finish();
}

// Opens a connection to the metrics port; -1 on failure.
int Connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(s);
    return -1;
  }
  return s;
}

// Scrapes /metrics, giving up (empty result) after a generous guard.
std::string Scrape(int port) {
  int s = Connect(port);
  if (s < 0) return "";
  timeval guard{60, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(s, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(s, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  close(s);
  return resp;
}

// Verifies that clients stuck in their request (partial headers, a body
// announced and never sent) do not keep scrapes out: with two metrics
// threads, such clients used to block the port for good.
TEST_F(HardeningIntegrationTest, SlowMetricsClientsDoNotBlockScrapes) {
  const int port = daemon_->process().metrics_port();
  std::vector<int> stuck;
  for (int i = 0; i < 3; ++i) {
    int s = Connect(port);
    ASSERT_GE(s, 0);
    const std::string partial = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    (void)!write(s, partial.data(), partial.size());
    stuck.push_back(s);
  }
  int body = Connect(port);
  ASSERT_GE(body, 0);
  const std::string huge =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9223372036854775807\r\n\r\n";
  (void)!write(body, huge.data(), huge.size());
  stuck.push_back(body);
  const std::string scraped = Scrape(port);
  EXPECT_TRUE(absl::StrContains(scraped, "inferd_")) << scraped.substr(0, 300);
  for (int s : stuck) close(s);
}

// Verifies that a second daemon on the same gRPC address refuses to start
// (gRPC's default SO_REUSEPORT let both accept, splitting clients' tensors
// between them).
TEST(HardeningLifecycleTest, SecondDaemonOnTheSamePortFails) {
  testing::DaemonProcess first(testing::DeviceArgs(1));
  ASSERT_TRUE(first.started()) << first.Stderr();
  std::vector<std::string> args = {testing::InferdBinary(),
                                   "--grpc-listen=127.0.0.1:" + std::to_string(first.grpc_port()),
                                   "--metrics-listen="};
  for (const std::string& a : testing::DeviceArgs(1)) args.push_back(a);
  testing::CommandResult second = testing::RunCommand(args, absl::Seconds(60));
  EXPECT_NE(second.exit_code, 0) << second.output;
  EXPECT_TRUE(absl::StrContains(second.output, "server.grpc_listen")) << second.output;
  first.Signal(SIGTERM);
  EXPECT_EQ(first.Wait(absl::Seconds(30)), 0) << first.Stderr();
}

// Verifies that SIGTERM answers every call in flight: 64 clients keep 4 MiB
// ModelInfer calls going until the signal (many still arriving when it
// comes, which gRPC's shutdown used to cancel) and send none after; every
// call succeeds with the right bytes, and the daemon exits 0.
TEST(HardeningLifecycleTest, SigtermAnswersEveryCallInFlight) {
  testing::DaemonProcess d(testing::DeviceArgs(2));
  ASSERT_TRUE(d.started()) << d.Stderr();
  std::atomic<bool> signalled{false};
  std::atomic<int> ok{0}, failed{0};
  absl::Mutex mu;
  std::string failure;
  std::vector<std::thread> clients;
  for (int t = 0; t < 64; ++t) {
    clients.emplace_back([&] {
      ClientOptions o;
      o.target = d.target();
      o.max_attempts = 1;
      o.timeout = absl::Seconds(120);
      InferdClient client(o);
      inference::ModelInferRequest req;
      req.set_model_name("identity");
      AddRawInput(&req, "INPUT0", DataType::kUint8, {4 << 20}, std::string(4 << 20, 'q'));
      while (!signalled.load()) {
        auto resp = client.Infer(req);
        if (resp.ok() && resp->raw_output_contents(0) == req.raw_input_contents(0)) {
          ++ok;
          continue;
        }
        ++failed;
        absl::MutexLock lock(&mu);
        failure = resp.ok() ? "wrong bytes" : resp.status().ToString();
        return;
      }
    });
  }
  while (ok.load() < 64) std::this_thread::yield();
  signalled = true;
  d.Signal(SIGTERM);
  for (auto& c : clients) c.join();
  EXPECT_EQ(d.Wait(absl::Seconds(60)), 0) << d.Stderr();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(failed.load(), 0) << failure;
}

}  // namespace
}  // namespace inferd
