// Request-path cost: server CPU per request of the daemon against a bare gRPC
// echo, measured side by side in one run. Each server runs in its own child
// process (this binary re-executed with --serve=...), so the CPU time the
// kernel charges to that process (utime + stime from /proc/<pid>/stat) is the
// server's alone; the closed-loop client runs here.
//
// Loads: 1 call in flight on one connection, 32 on one connection, 256 over 8
// connections (32 each). For each: QPS, p50/p99, server CPU µs per request,
// and inferd/echo ratios; at the heaviest load the daemon's busiest threads
// (CPU share by thread name) show whether one thread or lock limits it.
//
// With --model-repository=DIR --model=NAME it also measures that model with
// batch-1 requests at 1 call in flight (p50) beside identity's p50 and the
// model's own compute time per execution (ModelStatistics compute_infer).
//
//   request_path_bench [--seconds=3] [--bytes=64] [--gpu] [--host-async]
//                      [--loads=1,32,256] [--config=YAML] [--repeat=1]
//                      [--model-repository=DIR --model=mlp --model-input=INPUT0:FP16:1x1024]
// (--loads: the levels to run, by calls in flight; --config: YAML the
// daemon's configuration starts from, e.g. '{server: {infer_threads: 4}}',
// to compare settings; --repeat: rounds of model and identity at 1 in
// flight, alternating.)
// (--host-async: host streams never run work on the calling thread, so
// every request finishes from a stream thread, as on a GPU.)
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "clients/cpp/load_generator.h"
#include "clients/cpp/tensor_helpers.h"
#include "core/config/config.h"
#include "grpcpp/grpcpp.h"
#include "inferd/v1/scheduler.grpc.pb.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/daemon.h"
#include "tests/bench/infer/echo_service.h"

extern char** environ;

// Every malloc/calloc/realloc of the process (the server child's count is
// what matters): this executable's definitions take precedence over glibc's.
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
}
namespace {
std::atomic<uint64_t> g_mallocs{0};
}  // namespace
extern "C" void* malloc(size_t n) {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(size_t n, size_t m) {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, m);
}
extern "C" void* realloc(void* p, size_t n) {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}

namespace inferd {
namespace {

// Child: serves until its stdin closes; prints "PORT <n>" first, then
// "MALLOCS <n>" (allocations so far) for each byte read from stdin.
int Serve(const std::string& what, bool gpu, bool host_async, const std::string& repository,
          const std::string& config_yaml) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  int port = 0;
  std::unique_ptr<grpc::Server> echo_server;
  std::unique_ptr<Daemon> daemon;
  EchoService echo;
  if (what == "echo") {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&echo);
    echo_server = b.BuildAndStart();
  } else {
    Config config;
    if (!config_yaml.empty()) {
      auto parsed = ParseConfig(config_yaml);
      if (!parsed.ok()) {
        std::fprintf(stderr, "--config: %s\n", std::string(parsed.status().message()).c_str());
        return 1;
      }
      config = *std::move(parsed);
    }
    config.server.grpc_listen = "127.0.0.1:0";
    config.server.metrics_listen = "";
    config.server.log_level = "warning";
    config.device.host_devices = gpu ? 0 : 1;
    // Host streams that never run work on the caller's thread finish every
    // request from a stream thread, as a GPU's completion thread does.
    config.device.host_inline_when_idle = !host_async;
    config.models.repository = repository;
    auto d = Daemon::Start(config);
    if (!d.ok()) {
      std::fprintf(stderr, "daemon: %s\n", std::string(d.status().message()).c_str());
      return 1;
    }
    daemon = std::move(*d);
    port = daemon->grpc_port();
  }
  std::printf("PORT %d\n", port);
  std::fflush(stdout);
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
    std::printf("MALLOCS %llu\n",
                static_cast<unsigned long long>(g_mallocs.load(std::memory_order_relaxed)));
    std::fflush(stdout);
  }
  if (daemon) daemon->Shutdown(absl::Seconds(5));
  if (echo_server) echo_server->Shutdown();
  return 0;
}

struct Child {
  pid_t pid = -1;
  int to_child = -1;  // closing it stops the child
  FILE* from_child = nullptr;
  int port = 0;
};

absl::StatusOr<Child> Spawn(const std::vector<std::string>& args) {
  int in[2], out[2];
  // Close-on-exec: a later child must not hold this one's pipe ends open.
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Child c;
  const int rc = posix_spawn(&c.pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (rc != 0) return absl::InternalError("posix_spawn failed");
  c.to_child = in[1];
  FILE* f = fdopen(out[0], "r");
  if (f == nullptr || std::fscanf(f, "PORT %d", &c.port) != 1) {
    return absl::InternalError("child did not report its port");
  }
  c.from_child = f;
  return c;
}

// The child's allocation count so far.
uint64_t Mallocs(const Child& c) {
  unsigned long long n = 0;
  if (write(c.to_child, "c", 1) != 1 || std::fscanf(c.from_child, " MALLOCS %llu", &n) != 1) {
    return 0;
  }
  return n;
}

// Voluntary context switches of all the process's threads (each is a
// thread going to sleep: a hand-off or a wait).
uint64_t ContextSwitches(pid_t pid) {
  uint64_t total = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task/";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + e->d_name + "/status");
    std::string line;
    while (std::getline(f, line)) {
      absl::string_view v = line;
      uint64_t n = 0;
      if (absl::ConsumePrefix(&v, "voluntary_ctxt_switches:") &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &n)) {
        total += n;
      }
    }
  }
  closedir(d);
  return total;
}

void Stop(Child& c) {
  close(c.to_child);
  if (c.from_child != nullptr) std::fclose(c.from_child);
  int st = 0;
  waitpid(c.pid, &st, 0);
}

// utime + stime of a process or one of its threads, in seconds.
double CpuSeconds(const std::string& stat_path, std::string* comm = nullptr) {
  std::ifstream f(stat_path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return 0;
  if (comm != nullptr) *comm = s.substr(open + 1, close - open - 1);
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) (void)absl::SimpleAtoi(field, &utime);
    if (i == 15) {
      (void)absl::SimpleAtoi(field, &stime);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU seconds per thread (tid -> {name, seconds}).
std::map<int, std::pair<std::string, double>> ThreadCpu(pid_t pid) {
  std::map<int, std::pair<std::string, double>> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task/";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    int tid = 0;
    if (!absl::SimpleAtoi(e->d_name, &tid)) continue;
    std::string name;
    const double s = CpuSeconds(dir + e->d_name + "/stat", &name);
    out[tid] = {name, s};
  }
  closedir(d);
  return out;
}

struct Measured {
  LoadResult load;
  double cpu_us_per_request = 0;
  double mallocs_per_request = 0;
  double switches_per_request = 0;  // voluntary context switches
  struct Threads {
    std::string name;
    int count = 0;
    double cores = 0, busiest = 0;  // all threads of the name, the busiest one
  };
  std::vector<Threads> threads;  // by name, busiest first
};

// Runs `connections` closed-loop clients of `per_connection` calls each.
Measured Measure(const Child& server, LoadOptions options, int connections, bool threads) {
  options.target = "127.0.0.1:" + std::to_string(server.port);
  LoadOptions warm = options;
  warm.warmup = absl::ZeroDuration();
  warm.duration = absl::Milliseconds(500);
  (void)RunLoad(warm);
  options.warmup = absl::ZeroDuration();
  const std::string stat = "/proc/" + std::to_string(server.pid) + "/stat";
  auto before_threads = threads ? ThreadCpu(server.pid) : decltype(ThreadCpu(0)){};
  const double before = CpuSeconds(stat);
  const uint64_t mallocs_before = Mallocs(server);
  const uint64_t switches_before = ContextSwitches(server.pid);
  std::vector<LoadResult> results(static_cast<size_t>(connections));
  std::vector<std::thread> clients;
  for (int i = 0; i < connections; ++i) {
    clients.emplace_back([&, i] { results[static_cast<size_t>(i)] = RunLoad(options); });
  }
  for (auto& t : clients) t.join();
  const double cpu = CpuSeconds(stat) - before;
  const double mallocs = static_cast<double>(Mallocs(server) - mallocs_before);
  const double switches = static_cast<double>(ContextSwitches(server.pid) - switches_before);
  Measured m;
  // Percentiles of the merged load: the connections' medians and tails are
  // alike (same load each), so their mean stands for the whole.
  for (const auto& r : results) {
    m.load.qps += r.qps;
    m.load.ok += r.ok;
    m.load.errors += r.errors;
    m.load.p50_us += r.p50_us / connections;
    m.load.p99_us += r.p99_us / connections;
  }
  if (m.load.ok > 0) {
    const double ok = static_cast<double>(m.load.ok);
    m.cpu_us_per_request = cpu * 1e6 / ok;
    m.mallocs_per_request = mallocs / ok;
    m.switches_per_request = switches / ok;
  }
  if (threads) {
    std::map<std::string, Measured::Threads> by_name;
    const double secs = absl::ToDoubleSeconds(options.duration);
    for (const auto& [tid, v] : ThreadCpu(server.pid)) {
      auto it = before_threads.find(tid);
      const double cores =
          (v.second - (it == before_threads.end() ? 0 : it->second.second)) / secs;
      Measured::Threads& t = by_name[v.first];
      t.name = v.first;
      ++t.count;
      t.cores += cores;
      t.busiest = std::max(t.busiest, cores);
    }
    for (const auto& [name, t] : by_name) m.threads.push_back(t);
    std::sort(m.threads.begin(), m.threads.end(),
              [](const auto& a, const auto& b) { return a.cores > b.cores; });
  }
  return m;
}

int Main(int argc, char** argv) {
  double seconds = 3;
  int bytes = 64;
  bool gpu = false;
  bool host_async = false;
  std::string serve, repository, model, model_input = "INPUT0:FP16:1x1024", config_yaml;
  std::string loads = "1,32,256";
  int repeat = 1;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--seconds=")) (void)absl::SimpleAtod(a, &seconds);
    else if (absl::ConsumePrefix(&a, "--bytes=")) (void)absl::SimpleAtoi(a, &bytes);
    else if (absl::ConsumePrefix(&a, "--serve=")) serve = std::string(a);
    else if (absl::ConsumePrefix(&a, "--model-repository=")) repository = std::string(a);
    else if (absl::ConsumePrefix(&a, "--model=")) model = std::string(a);
    else if (absl::ConsumePrefix(&a, "--model-input=")) model_input = std::string(a);
    else if (absl::ConsumePrefix(&a, "--config=")) config_yaml = std::string(a);
    else if (absl::ConsumePrefix(&a, "--loads=")) loads = std::string(a);
    else if (absl::ConsumePrefix(&a, "--repeat=")) (void)absl::SimpleAtoi(a, &repeat);
    else if (a == "--gpu") gpu = true;
    else if (a == "--host-async") host_async = true;
    else {
      std::fprintf(stderr,
                   "usage: request_path_bench [--seconds=S] [--bytes=B] [--gpu] [--host-async] "
                   "[--loads=1,32,256] [--config=YAML] [--repeat=N] "
                   "[--model-repository=DIR --model=NAME --model-input=NAME:DTYPE:DIMS]\n");
      return 2;
    }
  }
  repeat = std::max(repeat, 1);
  if (!serve.empty()) return Serve(serve, gpu, host_async, repository, config_yaml);

  auto echo = Spawn({"request_path_bench", "--serve=echo"});
  std::vector<std::string> daemon_args = {"request_path_bench", "--serve=inferd"};
  if (gpu) daemon_args.push_back("--gpu");
  if (host_async) daemon_args.push_back("--host-async");
  if (!repository.empty()) daemon_args.push_back("--model-repository=" + repository);
  if (!config_yaml.empty()) daemon_args.push_back("--config=" + config_yaml);
  auto daemon = Spawn(daemon_args);
  if (!echo.ok() || !daemon.ok()) {
    std::fprintf(stderr, "could not start the servers\n");
    return 1;
  }
  LoadOptions identity;
  identity.duration = absl::Seconds(seconds);
  identity.request.set_model_name("identity");
  AddRawInput(&identity.request, "INPUT0", DataType::kUint8, {bytes},
              std::string(static_cast<size_t>(bytes), 'x'));

  struct Level {
    const char* name;
    int per_connection, connections;
  };
  const Level all_levels[] = {{"1 in flight", 1, 1}, {"32 in flight, 1 conn", 32, 1},
                              {"256 in flight, 8 conns", 32, 8}};
  std::vector<Level> levels;
  for (absl::string_view l : absl::StrSplit(loads, ',')) {
    for (const Level& level : all_levels) {
      if (absl::StrCat(level.per_connection * level.connections) == l) levels.push_back(level);
    }
  }
  if (levels.empty()) {
    std::fprintf(stderr, "--loads: a list of 1, 32 and 256\n");
    return 2;
  }
  std::printf("ModelInfer identity, %d B, %.1f s per level, %s devices, %u cores\n", bytes,
              seconds, gpu ? "GPU" : "host", std::thread::hardware_concurrency());
  std::printf("(server CPU us, heap allocations and voluntary context switches per request)\n");
  std::printf("%-24s %10s %10s %8s %8s %8s %8s %9s %9s %6s %7s %7s %7s %7s\n", "load",
              "echo QPS", "inferd QPS", "echo p50", "inferd", "echo p99", "inferd", "echo CPU",
              "inferd", "ratio", "mallocs", "inferd", "switch", "inferd");
  std::string json = "{\"bench\":\"request_path\",\"levels\":[";
  Measured heaviest;
  uint64_t errors = 0;
  for (const Level& l : levels) {
    LoadOptions o = identity;
    o.concurrency = l.per_connection;
    const bool last = &l == &levels.back();
    Measured e = Measure(*echo, o, l.connections, false);
    Measured n = Measure(*daemon, o, l.connections, last);
    errors += e.load.errors + n.load.errors;
    const double ratio = e.cpu_us_per_request > 0 ? n.cpu_us_per_request / e.cpu_us_per_request : 0;
    std::printf(
        "%-24s %10.0f %10.0f %8.0f %8.0f %8.0f %8.0f %9.1f %9.1f %6.2f %7.1f %7.1f %7.2f %7.2f\n",
        l.name, e.load.qps, n.load.qps, e.load.p50_us, n.load.p50_us, e.load.p99_us,
        n.load.p99_us, e.cpu_us_per_request, n.cpu_us_per_request, ratio, e.mallocs_per_request,
        n.mallocs_per_request, e.switches_per_request, n.switches_per_request);
    char buf[768];
    std::snprintf(buf, sizeof buf,
                  "%s{\"load\":\"%s\",\"in_flight\":%d,\"echo_qps\":%.0f,\"inferd_qps\":%.0f,"
                  "\"echo_p50_us\":%.1f,\"inferd_p50_us\":%.1f,\"echo_p99_us\":%.1f,"
                  "\"inferd_p99_us\":%.1f,\"echo_cpu_us\":%.1f,\"inferd_cpu_us\":%.1f,"
                  "\"cpu_ratio\":%.3f,\"echo_mallocs\":%.2f,\"inferd_mallocs\":%.2f,"
                  "\"echo_switches\":%.3f,\"inferd_switches\":%.3f}",
                  &l == &levels.front() ? "" : ",", l.name, l.per_connection * l.connections,
                  e.load.qps, n.load.qps, e.load.p50_us, n.load.p50_us, e.load.p99_us, n.load.p99_us,
                  e.cpu_us_per_request, n.cpu_us_per_request, ratio, e.mallocs_per_request,
                  n.mallocs_per_request, e.switches_per_request, n.switches_per_request);
    json += buf;
    if (last) heaviest = n;
  }
  {
    // How many of the daemon's requests ran in groups (a freed slot running
    // queued requests together: scheduler.max_requests_per_slot).
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(daemon->port),
                                       grpc::InsecureChannelCredentials());
    auto stub = inferd::v1::Scheduler::NewStub(channel);
    grpc::ClientContext ctx;
    inferd::v1::GetSchedulerStatsResponse stats;
    if (stub->GetSchedulerStats(&ctx, {}, &stats).ok()) {
      std::printf("scheduler: %lu requests succeeded, %lu in %lu groups\n",
                  static_cast<unsigned long>(stats.succeeded()),
                  static_cast<unsigned long>(stats.grouped_requests()),
                  static_cast<unsigned long>(stats.groups()));
      json += absl::StrCat("],\"groups\":", stats.groups(),
                           ",\"grouped_requests\":", stats.grouped_requests(),
                           ",\"succeeded\":", stats.succeeded());
    } else {
      json += "]";
    }
  }
  json += ",\"busiest_threads\":[";
  std::printf("\ninferd threads at the heaviest load (cores busy; by thread name):\n");
  std::printf("  %-20s %8s %8s %14s\n", "name", "threads", "cores", "busiest thread");
  for (size_t i = 0; i < heaviest.threads.size() && i < 10; ++i) {
    const auto& t = heaviest.threads[i];
    std::printf("  %-20s %8d %8.2f %14.2f\n", t.name.c_str(), t.count, t.cores, t.busiest);
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "%s{\"name\":\"%s\",\"threads\":%d,\"cores\":%.3f,\"busiest\":%.3f}",
                  i ? "," : "", t.name.c_str(), t.count, t.cores, t.busiest);
    json += buf;
  }
  json += "]";

  if (!model.empty()) {
    // Batch-1 latency of the model at 1 in flight, beside identity's, and the
    // model's compute time per execution from the daemon's statistics.
    LoadOptions o;
    o.concurrency = 1;
    o.duration = absl::Seconds(seconds);
    o.request.set_model_name(model);
    std::vector<std::string> parts = absl::StrSplit(model_input, ':');
    auto dtype = parts.size() == 3 ? ParseDataType(parts[1]) : std::nullopt;
    if (!dtype) {
      std::fprintf(stderr, "--model-input: NAME:DTYPE:DIMS, e.g. INPUT0:FP16:1x1024\n");
      return 2;
    }
    std::vector<int64_t> dims;
    int64_t elements = 1;
    for (absl::string_view d : absl::StrSplit(parts[2], 'x')) {
      int64_t v = 0;
      if (!absl::SimpleAtoi(d, &v) || v <= 0) return 2;
      dims.push_back(v);
      elements *= v;
    }
    AddRawInput(&o.request, parts[0], *dtype, dims,
                std::string(static_cast<size_t>(elements * DataTypeSize(*dtype)), '\0'));
    // Model and identity alternate `repeat` times; the median of the
    // differences is what the model adds (the host's state drifts between
    // rounds more than within one).
    LoadOptions id1 = identity;
    id1.concurrency = 1;
    std::vector<double> model_p50, identity_p50, added;
    for (int r = 0; r < repeat; ++r) {
      Measured m = Measure(*daemon, o, 1, false);
      Measured id = Measure(*daemon, id1, 1, false);
      errors += m.load.errors + id.load.errors;
      model_p50.push_back(m.load.p50_us);
      identity_p50.push_back(id.load.p50_us);
      added.push_back(m.load.p50_us - id.load.p50_us);
      std::printf("%s round %d: p50 %.0f us, identity p50 %.0f us, difference %.0f us\n",
                  model.c_str(), r + 1, m.load.p50_us, id.load.p50_us, added.back());
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.empty() ? 0.0 : v[v.size() / 2];
    };
    const double model_median = median(model_p50);
    const double identity_median = median(identity_p50);
    const double added_median = median(added);
    // The host time the daemon spends enqueueing one execution (Triton's
    // compute_infer as the daemon records it: on a GPU, the launch, not
    // the GPU time, which mlp_gpu_bench measures).
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(daemon->port),
                                       grpc::InsecureChannelCredentials());
    auto stub = inference::GRPCInferenceService::NewStub(channel);
    inference::ModelStatisticsRequest sreq;
    sreq.set_name(model);
    inference::ModelStatisticsResponse sresp;
    grpc::ClientContext ctx;
    double compute_us = 0;
    if (stub->ModelStatistics(&ctx, sreq, &sresp).ok() && sresp.model_stats_size() > 0) {
      const auto& s = sresp.model_stats(0);
      const auto& c = s.inference_stats().compute_infer();
      if (c.count() > 0) {
        compute_us = static_cast<double>(c.ns()) / 1e3 / static_cast<double>(c.count());
      }
    }
    std::printf("\n%s batch 1, 1 in flight: p50 %.0f us, identity p50 %.0f us, the model adds "
                "%.0f us (median of %d rounds); compute_infer %.0f us per execution\n",
                model.c_str(), model_median, identity_median, added_median, repeat, compute_us);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  ",\"model\":\"%s\",\"model_p50_us\":%.1f,\"identity_p50_us\":%.1f,"
                  "\"model_adds_us\":%.1f,\"rounds\":%d,\"model_compute_us\":%.1f",
                  model.c_str(), model_median, identity_median, added_median, repeat, compute_us);
    json += buf;
  }
  json += "}";
  std::printf("%s\n", json.c_str());
  Stop(*echo);
  Stop(*daemon);
  return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
