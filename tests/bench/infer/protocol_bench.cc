// The protocol extensions' benchmarks, each against its baseline in the
// same run, on the real daemon (in process):
//
//   stream   identity requests on ONE connection: ModelStreamInfer with a
//            window of requests in flight vs unary ModelInfer (one at a
//            time, and with the same number in flight on the channel).
//   shm      one 64 MiB input (and output) through system shared memory vs
//            through raw_input_contents / raw_output_contents: latency.
//   cudashm  (GPU machine) the same through CUDA shared memory (a client
//            process exports cudaMalloc memory with cudaIpcGetMemHandle).
//
//   protocol_bench [--seconds=3] [--window=32] [--bytes=64] [--mib=64]
//                  [--reps=10] [--only=stream|shm|cudashm] [--gpu]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/config/config.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/daemon.h"
#include "tests/integration/shm_test_util.h"
#if INFERD_BENCH_CUDA
#include <cuda_runtime.h>
#endif

namespace inferd {
namespace {

struct Options {
  double seconds = 3;
  int window = 32;
  int bytes = 64;
  int mib = 64;
  int reps = 10;
  std::string only;
  bool gpu = false;
};

std::shared_ptr<grpc::Channel> Channel(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

inference::ModelInferRequest Identity(uint64_t bytes) {
  inference::ModelInferRequest r;
  r.set_model_name("identity");
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("UINT8");
  in->add_shape(static_cast<int64_t>(bytes));
  r.add_raw_input_contents(std::string(bytes, 'x'));
  return r;
}

// Unary ModelInfer on one channel with `in_flight` threads; returns QPS.
double Unary(int port, const Options& o, int in_flight) {
  auto stub = inference::GRPCInferenceService::NewStub(Channel(port));
  const inference::ModelInferRequest req = Identity(static_cast<uint64_t>(o.bytes));
  std::atomic<uint64_t> done{0};
  const absl::Time end = absl::Now() + absl::Seconds(o.seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < in_flight; ++t) {
    threads.emplace_back([&] {
      inference::ModelInferResponse resp;
      while (absl::Now() < end) {
        grpc::ClientContext ctx;
        if (stub->ModelInfer(&ctx, req, &resp).ok()) ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  return static_cast<double>(done.load()) / o.seconds;
}

// ModelStreamInfer on one channel keeping `o.window` requests in flight.
double Stream(int port, const Options& o) {
  auto stub = inference::GRPCInferenceService::NewStub(Channel(port));
  grpc::ClientContext ctx;
  auto stream = stub->ModelStreamInfer(&ctx);
  const inference::ModelInferRequest req = Identity(static_cast<uint64_t>(o.bytes));
  absl::Mutex mu;
  int in_flight = 0;
  uint64_t done = 0, errors = 0;
  const absl::Time end = absl::Now() + absl::Seconds(o.seconds);
  std::thread reader([&] {
    inference::ModelStreamInferResponse resp;
    while (stream->Read(&resp)) {
      absl::MutexLock lock(&mu);
      --in_flight;
      ++done;
      if (!resp.error_message().empty()) ++errors;
    }
  });
  while (absl::Now() < end) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() { return in_flight < o.window; };
      mu.Await(absl::Condition(&room));
      ++in_flight;
    }
    if (!stream->Write(req)) break;
  }
  stream->WritesDone();
  reader.join();
  (void)stream->Finish();
  if (errors > 0) std::fprintf(stderr, "stream: %lu errors\n", static_cast<unsigned long>(errors));
  return static_cast<double>(done) / o.seconds;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void SetShm(google::protobuf::Map<std::string, inference::InferParameter>* p,
            const std::string& region, uint64_t bytes) {
  (*p)["shared_memory_region"].set_string_param(region);
  (*p)["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(bytes));
}

// Median latency (ms) of `reps` identity calls of `bytes` with the input
// and output either in regions `in_region`/`out_region` or raw.
double Latency(inference::GRPCInferenceService::Stub& stub, uint64_t bytes, int reps,
               const std::string& in_region, const std::string& out_region) {
  inference::ModelInferRequest req;
  if (in_region.empty()) {
    req = Identity(bytes);
  } else {
    req.set_model_name("identity");
    auto* in = req.add_inputs();
    in->set_name("INPUT0");
    in->set_datatype("UINT8");
    in->add_shape(static_cast<int64_t>(bytes));
    SetShm(in->mutable_parameters(), in_region, bytes);
    auto* out = req.add_outputs();
    out->set_name("OUTPUT0");
    SetShm(out->mutable_parameters(), out_region, bytes);
  }
  std::vector<double> ms;
  for (int i = 0; i < reps + 1; ++i) {
    inference::ModelInferResponse resp;
    grpc::ClientContext ctx;
    const absl::Time start = absl::Now();
    grpc::Status st = stub.ModelInfer(&ctx, req, &resp);
    const double took = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (!st.ok()) {
      std::fprintf(stderr, "ModelInfer: %s\n", st.error_message().c_str());
      return -1;
    }
    if (i > 0) ms.push_back(took);  // the first warms the pools
  }
  return Median(ms);
}

void RegisterSystem(inference::GRPCInferenceService::Stub& stub, const std::string& name,
                    const std::string& key, uint64_t bytes) {
  inference::SystemSharedMemoryRegisterRequest r;
  r.set_name(name);
  r.set_key(key);
  r.set_byte_size(bytes);
  inference::SystemSharedMemoryRegisterResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub.SystemSharedMemoryRegister(&ctx, r, &resp);
  if (!st.ok()) std::fprintf(stderr, "register %s: %s\n", name.c_str(), st.error_message().c_str());
}

void ShmBench(int port, const Options& o) {
  const uint64_t bytes = static_cast<uint64_t>(o.mib) << 20;
  auto stub = inference::GRPCInferenceService::NewStub(Channel(port));
  testing::PosixShm in("/inferd_bench_in", bytes), out("/inferd_bench_out", bytes);
  std::memset(in.data(), 'y', bytes);
  RegisterSystem(*stub, "bench_in", in.key(), bytes);
  RegisterSystem(*stub, "bench_out", out.key(), bytes);
  const double raw = Latency(*stub, bytes, o.reps, "", "");
  const double shm = Latency(*stub, bytes, o.reps, "bench_in", "bench_out");
  std::printf("%d MiB identity, median of %d: raw_input_contents %.2f ms, system shm %.2f ms, "
              "ratio %.1fx\n",
              o.mib, o.reps, raw, shm, raw / shm);
  std::printf("{\"bench\":\"system_shm\",\"mib\":%d,\"raw_ms\":%.3f,\"shm_ms\":%.3f,"
              "\"ratio\":%.2f}\n",
              o.mib, raw, shm, raw / shm);
}

#if INFERD_BENCH_CUDA
// Runs in a child process (CUDA IPC handles open only in another process).
int CudaShmClient(int port, const Options& o) {
  const uint64_t bytes = static_cast<uint64_t>(o.mib) << 20;
  void* in = nullptr;
  void* out = nullptr;
  auto failed = [](const char* what, cudaError_t e) {
    std::fprintf(stderr, "cudashm client: %s: %s\n", what, cudaGetErrorString(e));
    return 1;
  };
  if (cudaError_t e = cudaMalloc(&in, bytes); e != cudaSuccess) return failed("cudaMalloc", e);
  if (cudaError_t e = cudaMalloc(&out, bytes); e != cudaSuccess) return failed("cudaMalloc", e);
  cudaMemset(in, 1, bytes);
  cudaDeviceSynchronize();
  auto stub = inference::GRPCInferenceService::NewStub(Channel(port));
  for (const auto& [name, ptr] : {std::pair<std::string, void*>("cuda_in", in), {"cuda_out", out}}) {
    cudaIpcMemHandle_t h;
    if (cudaError_t e = cudaIpcGetMemHandle(&h, ptr); e != cudaSuccess) {
      return failed("cudaIpcGetMemHandle", e);
    }
    inference::CudaSharedMemoryRegisterRequest r;
    r.set_name(name);
    r.set_raw_handle(std::string(reinterpret_cast<const char*>(&h), sizeof(h)));
    r.set_device_id(0);
    r.set_byte_size(bytes);
    inference::CudaSharedMemoryRegisterResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = stub->CudaSharedMemoryRegister(&ctx, r, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "register %s: %s\n", name.c_str(), st.error_message().c_str());
      return 1;
    }
  }
  const double raw = Latency(*stub, bytes, o.reps, "", "");
  const double shm = Latency(*stub, bytes, o.reps, "cuda_in", "cuda_out");
  if (raw <= 0 || shm <= 0) std::fprintf(stderr, "cudashm client: raw %f ms, shm %f ms\n", raw, shm);
  std::printf("%d MiB identity on GPU, median of %d: raw_input_contents %.2f ms, CUDA shm %.2f ms, "
              "ratio %.1fx\n",
              o.mib, o.reps, raw, shm, raw / shm);
  std::printf("{\"bench\":\"cuda_shm\",\"mib\":%d,\"raw_ms\":%.3f,\"shm_ms\":%.3f,"
              "\"ratio\":%.2f}\n",
              o.mib, raw, shm, raw / shm);
  return shm > 0 ? 0 : 1;
}
#endif

int Main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Options o;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--seconds=")) (void)absl::SimpleAtod(a, &o.seconds);
    else if (absl::ConsumePrefix(&a, "--window=")) (void)absl::SimpleAtoi(a, &o.window);
    else if (absl::ConsumePrefix(&a, "--bytes=")) (void)absl::SimpleAtoi(a, &o.bytes);
    else if (absl::ConsumePrefix(&a, "--mib=")) (void)absl::SimpleAtoi(a, &o.mib);
    else if (absl::ConsumePrefix(&a, "--reps=")) (void)absl::SimpleAtoi(a, &o.reps);
    else if (absl::ConsumePrefix(&a, "--only=")) o.only = std::string(a);
    else if (a == "--gpu") o.gpu = true;
    else {
      std::fprintf(stderr,
                   "usage: protocol_bench [--seconds=S] [--window=N] [--bytes=B] [--mib=M] "
                   "[--reps=R] [--only=stream|shm|cudashm] [--gpu]\n");
      return 2;
    }
  }
  const bool cuda_only = o.only == "cudashm";
  int pipe_fds[2] = {-1, -1};
  pid_t child = -1;
  if (cuda_only) {
#if INFERD_BENCH_CUDA
    // Fork before CUDA or gRPC start: the child is the CUDA client.
    if (::pipe(pipe_fds) != 0) return 1;
    child = ::fork();
    if (child == 0) {
      ::close(pipe_fds[1]);
      int port = 0;
      if (::read(pipe_fds[0], &port, sizeof(port)) != sizeof(port)) _exit(1);
      const int client_rc = CudaShmClient(port, o);
      std::fflush(nullptr);  // _exit skips stdio: a piped stdout is still buffered
      _exit(client_rc);
    }
    ::close(pipe_fds[0]);
#else
    std::fprintf(stderr, "cudashm: built without CUDA\n");
    return 2;
#endif
  }
  Config config;
  config.server.grpc_listen = "127.0.0.1:0";
  config.server.metrics_listen = "";
  config.server.log_level = "warning";
  config.server.max_receive_message_bytes = (int64_t{o.mib} << 20) + (1 << 20);
  config.server.max_send_message_bytes = config.server.max_receive_message_bytes;
  config.server.max_stream_held_responses = std::max(o.window * 2, 128);
  config.device.host_devices = o.gpu || cuda_only ? 0 : 1;
  auto daemon = Daemon::Start(config);
  if (!daemon.ok()) {
    std::fprintf(stderr, "daemon: %s\n", std::string(daemon.status().message()).c_str());
    return 1;
  }
  const int port = (*daemon)->grpc_port();
  int rc = 0;
  if (cuda_only) {
    (void)::write(pipe_fds[1], &port, sizeof(port));
    int status = 0;
    ::waitpid(child, &status, 0);
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    if (WIFSIGNALED(status)) std::fprintf(stderr, "cudashm client: signal %d\n", WTERMSIG(status));
  }
  if (o.only.empty() || o.only == "stream") {
    const double unary1 = Unary(port, o, 1);
    const double unary_n = Unary(port, o, o.window);
    const double stream = Stream(port, o);
    std::printf("identity %d B on one connection, %.1f s each, %s devices, %u cores\n", o.bytes,
                o.seconds, o.gpu ? "GPU" : "host", std::thread::hardware_concurrency());
    std::printf("%-34s %10s %8s\n", "client", "QPS", "stream/x");
    std::printf("%-34s %10.0f %8.2f\n", "unary ModelInfer, 1 in flight", unary1, stream / unary1);
    std::printf("%-34s %10.0f %8.2f\n",
                ("unary ModelInfer, " + std::to_string(o.window) + " in flight").c_str(), unary_n,
                stream / unary_n);
    std::printf("%-34s %10.0f\n",
                ("ModelStreamInfer, window " + std::to_string(o.window)).c_str(), stream);
    std::printf("{\"bench\":\"stream_vs_unary\",\"bytes\":%d,\"window\":%d,\"unary1_qps\":%.0f,"
                "\"unary_window_qps\":%.0f,\"stream_qps\":%.0f}\n",
                o.bytes, o.window, unary1, unary_n, stream);
  }
  if (o.only.empty() || o.only == "shm") ShmBench(port, o);
  (*daemon)->Shutdown(absl::Seconds(5));
  return rc;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
