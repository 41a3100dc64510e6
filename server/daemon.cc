#include "server/daemon.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/comm/comm_engine.h"
#include "core/config/engine_options.h"
#include "core/device/device_allocator.h"
#include "core/device/discovery.h"
#include "core/infer/direct_dispatcher.h"
#include "core/memory/memory_engine.h"
#include "core/models/model_registry.h"
#include "core/models/model_repository.h"
#include "core/models/repository_manager.h"
#include "core/scaling/device_sampler.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/sched/batching_stage.h"
#include "core/sched/memory_batch_size.h"
#include "core/sched/memory_tensor_access.h"
#include "core/sched/scheduler.h"
#include "core/shm/shared_memory_registry.h"
#include "core/util/clock.h"
#include "core/util/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/server_builder_option.h"
#include "prometheus/registry.h"
#include "server/call_tracker.h"
#include "server/communication_service.h"
#include "server/device_collector.h"
#include "server/grpc_metrics.h"
#include "server/health_service.h"
#include "server/infer_queues.h"
#include "server/kserve_service.h"
#include "server/memory_service.h"
#include "server/metrics_server.h"
#include "server/model_collector.h"
#include "server/protobuf_log.h"
#include "server/report_service.h"
#include "server/scaling_service.h"
#include "server/scheduler_service.h"
#include "server/tls_credentials.h"
#include "server/token_auth.h"

namespace inferd {
namespace {

// Drain (Daemon::Shutdown): it ends when no call has been in flight, and
// none has started, for this long, and gRPC has no call still arriving
// (or at the grace period's end).
constexpr absl::Duration kDrainQuiet = absl::Milliseconds(100);
// After a quiet drain, how long gRPC's shutdown may wait for clients to
// acknowledge it before their connections are closed.
constexpr absl::Duration kShutdownLinger = absl::Milliseconds(500);
// How often a quiet drain asks gRPC whether calls are still arriving.
constexpr absl::Duration kArrivalPoll = absl::Milliseconds(5);

// server.infer_threads, 0 resolved: half the cores, 2 to 8.
int InferThreads(const ServerConfig& server) {
  if (server.infer_threads > 0) return server.infer_threads;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores / 2, 2, 8);
}

// Protobuf's own log lines (one per request with invalid UTF-8): at most
// one per this interval.
constexpr absl::Duration kProtobufLogInterval = absl::Seconds(10);

bool IsLoopback(const std::string& address) { return IsLoopbackAddress(address); }

// Takes gRPC's reflection plugin out of one server: linking the reflection
// library registers it for every ServerBuilder (a static initializer), so
// server.reflection: off must remove it rather than only not add it.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
      return p != nullptr && p->name() == "proto_server_reflection";
    });
  }
};

// One start line that says what the scaler will do with the devices.
void LogScalerPlan(const ScalerOptions& options) {
  const ScalingPolicy& p = options.policy;
  if (!p.enabled) {
    INFERD_LOG(kInfo, "scaler: dynamic scaling off; every healthy device stays in service");
    return;
  }
  std::vector<std::string> down;
  for (const ScalingRule& r : p.rules) {
    if (r.direction == ScaleDirection::kDown) {
      down.push_back(std::string(absl::StripPrefix(DescribeRule(r), "down: ")));
    }
  }
  INFERD_LOG(kInfo, "scaler: dynamic scaling on: a device leaves service when ",
             down.empty() ? std::string("no rule (none scales down)") : absl::StrJoin(down, " or "),
             ", down to ", p.min_active_devices,
             " active; set device.multi_gpu.performance_optimization.enable_dynamic_scaling: "
             "false to keep every healthy device in service");
}

}  // namespace

struct Daemon::Impl {
  Config config;
  // Declared in construction order; destroyed in reverse.
  std::vector<std::unique_ptr<Device>> devices;
  std::vector<Device*> device_ptrs;
  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<MetricsServer> metrics_server;  // null without server.metrics_listen
  std::shared_ptr<DeviceCollector> device_collector;
  std::shared_ptr<ModelCollector> model_collector;  // reads `models`
  // The dynamic scaler: the active device set and the replica figure. The
  // scheduler listens to it (SetDeviceActive) and feeds it load samples.
  std::unique_ptr<DynamicScaler> scaler;
  std::unique_ptr<MemoryEngine> memory;
  std::unique_ptr<DeviceAllocator> allocator;  // scratch buffers from `memory`
  std::unique_ptr<CommEngine> comm;            // transfers and collectives over `memory`
  ModelRegistry models;
  std::unique_ptr<ModelRepository> repository;  // null without models.repository
  std::unique_ptr<RepositoryManager> repository_manager;
  std::unique_ptr<MemoryTensorAccess> tensor_access;  // the scheduler's view of `memory`
  std::unique_ptr<Scheduler> scheduler;               // ModelInfer and tasks (core/sched)
  int scheduler_listener = 0;                         // its scaler listener
  std::unique_ptr<InferSubmitter> submitter;          // only with enable_advanced_scheduling false
  std::unique_ptr<SharedMemoryRegistry> shared_memory;  // regions clients register
  std::unique_ptr<GrpcMetrics> grpc_metrics;
  std::unique_ptr<HealthService> health;
  std::unique_ptr<KServeService> kserve;
  std::unique_ptr<ScalingService> scaling_service;
  std::unique_ptr<MemoryService> memory_service;
  std::unique_ptr<ReportService> report_service;
  std::unique_ptr<CommunicationService> communication_service;
  std::unique_ptr<SchedulerService> scheduler_service;
  CallTracker* calls = nullptr;        // owned by `server`
  // gRPC's count of the server's calls, which sees those still arriving.
  std::unique_ptr<TransportCalls> transport_calls;
  std::unique_ptr<TokenTable> tokens;  // null without server.auth; outlives `server`
  // ModelInfer's completion queues: destroyed after `server`.
  std::unique_ptr<InferQueues> infer_queues;
  std::unique_ptr<grpc::Server> server;
  int grpc_port = 0;
  int metrics_port = 0;
  bool shut_down = false;
  InferSubmitter* infer_submitter = nullptr;  // what ModelInfer submits to

  // The steps of Daemon::Start, in order; each reads `config`.
  absl::Status DiscoverAndMeasure();
  absl::Status StartMetricsEndpoint();
  absl::Status StartEngines();
  absl::Status LoadModels();
  absl::Status StartScheduler();
  absl::Status BuildServices();
  absl::Status StartGrpcServer();

  ~Impl() {
    // No scrape may read the engines and models while they go.
    metrics_server.reset();
    // Queued ModelInfer calls hold reactors: fail them before the server goes.
    if (scheduler) scheduler->Shutdown();
    if (server) server->Shutdown(std::chrono::system_clock::now());
    server.reset();
    kserve.reset();
    scaling_service.reset();
    memory_service.reset();
    report_service.reset();
    communication_service.reset();
    scheduler_service.reset();
    health.reset();
    if (repository_manager) repository_manager->StopPolling();
    submitter.reset();
    if (scaler && scheduler_listener != 0) scaler->UnregisterListener(scheduler_listener);
    scheduler.reset();
    tensor_access.reset();
    if (scaler) scaler->Stop();  // its sampler reads the devices
    for (auto& d : devices) (void)d->Synchronize();
    allocator.reset();
    comm.reset();  // its pins and buffers go back to `memory`
    memory.reset();
  }
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

int Daemon::grpc_port() const { return impl_->grpc_port; }
int Daemon::metrics_port() const { return impl_->metrics_port; }

// Devices, the metrics registry and its collectors.
absl::Status Daemon::Impl::DiscoverAndMeasure() {
  auto found = DiscoverDevices(DiscoveryOptionsFromConfig(config));
  if (!found.ok()) return found.status();
  devices = *std::move(found);
  for (auto& d : devices) device_ptrs.push_back(d.get());
  registry = std::make_shared<prometheus::Registry>();
  device_collector = std::make_shared<DeviceCollector>(device_ptrs, BuiltWithCuda());
  model_collector = std::make_shared<ModelCollector>(&models);
  return absl::OkStatus();
}

// server.metrics_listen: /metrics over HTTP, or HTTPS with server.tls.
absl::Status Daemon::Impl::StartMetricsEndpoint() {
  if (config.server.metrics_listen.empty()) return absl::OkStatus();
  MetricsServerOptions options;
  options.listen = config.server.metrics_listen;
  options.tls = config.server.tls;
  options.threads = config.server.metrics_threads;
  options.request_timeout = absl::Seconds(config.server.metrics_request_timeout_seconds);
  auto server =
      MetricsServer::Start(std::move(options), {registry, device_collector, model_collector});
  if (!server.ok()) return server.status();
  metrics_server = *std::move(server);
  metrics_port = metrics_server->port();
  return absl::OkStatus();
}

// The scaler, the memory engine and the communication engine.
absl::Status Daemon::Impl::StartEngines() {
  // Scaling: the scaler samples device load itself before each evaluation.
  std::vector<int> device_indexes;
  for (Device* d : device_ptrs) device_indexes.push_back(d->index());
  auto scaler_options = ScalerOptionsFromConfig(config, std::move(device_indexes));
  if (!scaler_options.ok()) return scaler_options.status();
  scaler_options->device_sampler = DeviceLoadSampler(device_ptrs);
  LogScalerPlan(*scaler_options);
  auto created_scaler = DynamicScaler::Create(*std::move(scaler_options), Clock::Real(), *registry);
  if (!created_scaler.ok()) return created_scaler.status();
  scaler = *std::move(created_scaler);
  // The evaluation thread runs even with enable_dynamic_scaling false: the
  // scaler then keeps every healthy device active but still samples and
  // reports, and SetScalingPolicy can turn scaling on at run time.
  scaler->Start();

  auto created_memory =
      MemoryEngine::Create(MemoryOptionsFromConfig(config), device_ptrs, Clock::Real(), *registry);
  if (!created_memory.ok()) return created_memory.status();
  memory = *std::move(created_memory);
  allocator = memory->NewScratchAllocator();

  // Communication engine (docs/COMM.md): calibrates each link kind once.
  auto created_comm = CommEngine::Create(CommOptionsFromConfig(config), device_ptrs, memory.get(),
                                         Clock::Real(), *registry);
  if (!created_comm.ok()) return created_comm.status();
  comm = *std::move(created_comm);
  return absl::OkStatus();
}

// The built-in models and those of models.repository.
absl::Status Daemon::Impl::LoadModels() {
  if (!config.models.repository.empty() &&
      !std::filesystem::is_directory(config.models.repository)) {
    return absl::InvalidArgumentError(
        absl::StrCat("models.repository: '", config.models.repository, "' is not a directory"));
  }
  std::vector<std::string> builtin_names;
  for (auto& m : BuiltinModels()) {
    builtin_names.push_back(m->signature().name);
    models.Add(std::move(m));
  }
  if (!config.models.repository.empty()) {
    auto opened = ModelRepository::Open(config.models.repository,
                                        ModelRepositoryOptionsFromConfig(config, device_ptrs));
    if (!opened.ok()) return opened.status();
    repository = *std::move(opened);
    repository_manager = std::make_unique<RepositoryManager>(
        repository.get(), &models, ModelControlModeFromConfig(config), std::move(builtin_names));
    if (absl::Status st = repository_manager->LoadAll(); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("models.repository: ", st.message()));
    }
    repository_manager->StartPolling(absl::Seconds(config.models.poll_interval_seconds));
  }
  return absl::OkStatus();
}

// The scheduler (core/sched, docs/SCHEDULER.md), wired to the scaler, and
// what ModelInfer submits to.
absl::Status Daemon::Impl::StartScheduler() {
  // Scheduler (core/sched, docs/SCHEDULER.md): serves ModelInfer and tasks;
  // tensor handles through the memory engine; device health and load go to
  // the scaler, whose active set it follows.
  tensor_access = std::make_unique<MemoryTensorAccess>(memory.get());
  auto sched_options = SchedulerOptionsFromConfig(config);
  if (!sched_options.ok()) return sched_options.status();
  sched_options->first_stream = 1;  // stream 0 is the memory engine's
  // Batches stop at what fits the device's free memory.
  sched_options->optimal_batch_size = MemoryBatchSizeFn(memory.get());
  DynamicScaler* scaler_ptr = scaler.get();
  sched_options->on_device_health = [scaler_ptr](int device, bool healthy,
                                                 const std::string& reason) {
    absl::Status st =
        healthy ? scaler_ptr->MarkHealthy(device) : scaler_ptr->MarkUnhealthy(device, reason);
    if (!st.ok()) INFERD_LOG(kWarning, "scaler health update: ", st.ToString());
  };
  sched_options->on_load_sample = [scaler_ptr](const SchedulerLoadSample& s) {
    (void)scaler_ptr->RecordSchedulerSample(
        SchedulerSample{s.queue_length, s.processing_time_seconds, s.throughput_tasks_per_second});
  };
  // A model's config.yaml dynamic_batching block overrides the defaults.
  sched_options->batching_lookup =
      ModelBatchingLookup(repository.get(), sched_options->default_batching);
  auto created_scheduler =
      Scheduler::Create(*std::move(sched_options), device_ptrs, allocator.get(), &models,
                        tensor_access.get(), Clock::Real(), *registry);
  if (!created_scheduler.ok()) return created_scheduler.status();
  scheduler = *std::move(created_scheduler);
  Scheduler* sched_ptr = scheduler.get();
  scheduler_listener = scaler->RegisterListener(
      [sched_ptr](const DeviceChange& c) { (void)sched_ptr->SetDeviceActive(c.device, c.active); });
  for (Device* d : device_ptrs) {
    (void)sched_ptr->SetDeviceActive(d->index(), scaler->IsActive(d->index()));
  }
  infer_submitter = sched_ptr;
  if (!config.device.performance.enable_advanced_scheduling) {
    // ModelInfer runs at once, round robin; tasks still go through the scheduler.
    submitter = std::make_unique<DirectDispatcher>(device_ptrs, allocator.get(), Clock::Real());
    infer_submitter = submitter.get();
  }
  return absl::OkStatus();
}

// The gRPC services over the engines.
absl::Status Daemon::Impl::BuildServices() {
  grpc_metrics = std::make_unique<GrpcMetrics>(*registry);
  health = std::make_unique<HealthService>(
      grpc_metrics.get(),
      std::vector<std::string>{
          inference::GRPCInferenceService::service_full_name(), v1::Memory::service_full_name(),
          v1::Communication::service_full_name(), v1::Scaling::service_full_name(),
          v1::Scheduler::service_full_name(), v1::Report::service_full_name()},
      config.limits.max_watch_streams);
  scaling_service = std::make_unique<ScalingService>(scaler.get(), grpc_metrics.get());
  memory_service = std::make_unique<MemoryService>(memory.get(), grpc_metrics.get());
  communication_service = std::make_unique<CommunicationService>(comm.get(), grpc_metrics.get());
  scheduler_service = std::make_unique<SchedulerService>(scheduler.get(), grpc_metrics.get());
  ReportSources report_sources;
  report_sources.devices = device_ptrs;
  report_sources.memory = memory.get();
  report_sources.scaler = scaler.get();
  report_sources.comm = comm.get();
  report_sources.scheduler = scheduler.get();
  report_service = std::make_unique<ReportService>(std::move(report_sources), grpc_metrics.get());
  shared_memory =
      std::make_unique<SharedMemoryRegistry>(SharedMemoryOptionsFromConfig(config, device_ptrs));
  KServeOptions kserve_options;
  kserve_options.limits = config.limits;
  kserve_options.max_stream_held_responses = config.server.max_stream_held_responses;
  kserve_options.instances_per_device = config.device.performance.max_tasks_per_device;
  kserve_options.repository = repository_manager.get();
  kserve_options.shared_memory = shared_memory.get();
  kserve_options.shared_memory_allowed =
      IsLoopback(config.server.grpc_listen) || config.shared_memory.allow_non_loopback;
  for (Device* d : device_ptrs) {
    kserve_options.has_cuda_device |= d->info().kind == DeviceKind::kCuda;
  }
  if (config.device.performance.enable_advanced_scheduling) {
    kserve_options.batching = [sched = scheduler.get()](const ModelSignature& sig) {
      return sched->BatchingFor(sig);
    };
  }
  kserve = std::make_unique<KServeService>(&models, infer_submitter, std::move(kserve_options),
                                           grpc_metrics.get());
  return absl::OkStatus();
}

// server.grpc_listen, with TLS, tokens, reflection and the call tracker.
absl::Status Daemon::Impl::StartGrpcServer() {
  const std::string& reflection = config.server.reflection;
  const bool want_reflection =
      reflection == "on" || (reflection == "auto" && IsLoopback(config.server.grpc_listen));
  if (want_reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  if (config.server.auth.enabled()) {
    auto loaded_tokens = TokenTable::Load(config.server.auth.tokens_file);
    if (!loaded_tokens.ok()) return loaded_tokens.status();
    tokens = *std::move(loaded_tokens);
  }
  auto credentials =
      MakeServerCredentials(config.server.grpc_listen, config.server.tls, tokens.get());
  if (!credentials.ok()) return credentials.status();
  if (!IsLoopback(config.server.grpc_listen) && !config.server.tls.enabled() &&
      !config.server.auth.enabled()) {
    INFERD_LOG(kWarning, "server.grpc_listen ", config.server.grpc_listen,
               " is beyond loopback with neither TLS nor authentication "
               "(server.allow_insecure_non_loopback): anyone who reaches the port may load "
               "and unload models and change policies");
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.server.grpc_listen, *credentials, &grpc_port);
  if (!want_reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.server.max_receive_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.server.max_send_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config.server.max_concurrent_streams);
  // gRPC sets SO_REUSEPORT by default: a second daemon on the same address
  // would start and split the connections (and tensors) with the first.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  {
    auto tracker = std::make_unique<CallTracker>(Clock::Real());
    calls = tracker.get();
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::move(tracker));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  builder.RegisterService(health.get());
  builder.RegisterService(kserve.get());
  builder.RegisterService(scaling_service.get());
  builder.RegisterService(memory_service.get());
  builder.RegisterService(report_service.get());
  builder.RegisterService(communication_service.get());
  builder.RegisterService(scheduler_service.get());
  infer_queues =
      std::make_unique<InferQueues>(builder, kserve.get(), InferThreads(config.server), calls);
  transport_calls = std::make_unique<TransportCalls>();
  server = builder.BuildAndStart();
  transport_calls->Identify();
  if (server == nullptr || grpc_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("server.grpc_listen: cannot listen on ", config.server.grpc_listen));
  }
  infer_queues->Start();
  const TlsConfig& tls = config.server.tls;
  INFERD_LOG(kInfo, "gRPC listening on ", config.server.grpc_listen, " (port ", grpc_port, ")",
             !tls.enabled()               ? ", plain text"
             : tls.client_ca_file.empty() ? ", TLS"
                                          : ", mutual TLS",
             tokens ? absl::StrCat(", bearer tokens (", tokens->size(), ")") : "",
             want_reflection ? ", reflection on" : "");
  if (metrics_server) {
    INFERD_LOG(kInfo, "metrics on ", config.server.metrics_listen, " (port ", metrics_port, ")",
               config.server.tls.enabled() ? ", HTTPS" : "");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const Config& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  InstallProtobufLogThrottle(Clock::Real(), kProtobufLogInterval);
  for (absl::Status (Impl::*step)() :
       {&Impl::DiscoverAndMeasure, &Impl::StartMetricsEndpoint, &Impl::StartEngines,
        &Impl::LoadModels, &Impl::StartScheduler, &Impl::BuildServices, &Impl::StartGrpcServer}) {
    if (absl::Status st = (impl.get()->*step)(); !st.ok()) return st;
  }
  impl->kserve->SetReady(true);
  impl->health->SetServing(true);
  INFERD_LOG(kInfo, "serving: ", impl->devices.size(), " device(s), ", impl->models.List().size(),
             " model(s)");
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

void Daemon::Reload() {
  if (impl_->tokens != nullptr) {
    absl::Status st = impl_->tokens->Reload();
    if (st.ok()) {
      INFERD_LOG(kInfo, "reloaded server.auth.tokens_file: ", impl_->tokens->size(), " token(s)");
    } else {
      INFERD_LOG(kWarning, "reload: ", st.message(), "; keeping the tokens loaded before");
    }
  }
  if (impl_->metrics_server != nullptr && impl_->config.server.tls.enabled()) {
    absl::Status st = impl_->metrics_server->Reload();
    if (st.ok()) {
      INFERD_LOG(kInfo, "reloaded the metrics port's TLS files");
    } else {
      INFERD_LOG(kWarning, "reload: ", st.message(), "; keeping the metrics certificate");
    }
  }
}

void Daemon::Shutdown(absl::Duration grace) {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  INFERD_LOG(kInfo, "shutting down: NOT_SERVING, draining for up to ", absl::FormatDuration(grace));
  impl_->kserve->SetReady(false);
  impl_->health->Shutdown();
  impl_->scheduler->CloseWatchers();  // WatchTasks streams end with UNAVAILABLE
  const absl::Duration delay = absl::Seconds(impl_->config.server.shutdown_delay_seconds);
  if (delay > absl::ZeroDuration()) {
    // Keep serving while probes see NOT_SERVING and traffic moves away.
    INFERD_LOG(kInfo, "NOT_SERVING for ", absl::FormatDuration(delay), " before draining");
    absl::SleepFor(delay);
  }
  // Drain before gRPC's shutdown, which cancels every call it has not yet
  // handed to the daemon (one whose request is still arriving): until the
  // server is quiet, every call is served, so calls sent before the signal
  // finish normally, however long their bytes take to arrive. Clients that
  // keep sending past NOT_SERVING hold the drain to the grace period's end.
  const absl::Time deadline = absl::Now() + grace;
  absl::Time close_by = deadline;
  bool quiet = impl_->calls->Drain(kDrainQuiet, deadline);
  // The tracker sees a call once its request has arrived; gRPC's own count
  // sees it from its first bytes. While that count says calls are still
  // arriving (a large request on a slow link or a busy host), keep serving.
  for (std::optional<int64_t> arriving = impl_->transport_calls->InFlight();
       quiet && arriving.value_or(0) > 0 && absl::Now() < deadline;
       arriving = impl_->transport_calls->InFlight()) {
    absl::SleepFor(kArrivalPoll);
    quiet = impl_->calls->Drain(kDrainQuiet, deadline);
  }
  if (quiet) {
    // gRPC's shutdown sends every connection a GOAWAY and a PING and keeps
    // it until the client answers; an idle client channel reads them only
    // when it next polls (every 5 s by default), which would hold the stop
    // that long. The server is quiet: give that exchange kShutdownLinger.
    close_by = std::min(deadline, absl::Now() + kShutdownLinger);
  } else {
    INFERD_LOG(kWarning, "drain: ", impl_->calls->in_flight(),
               " call(s) still in flight at the deadline; cancelling them");
  }
  impl_->server->Shutdown(absl::ToChronoTime(close_by));
  impl_->server->Wait();
  impl_->scheduler->Shutdown();
  impl_->scaler->Stop();
  for (auto& d : impl_->devices) (void)d->Synchronize();
  // Every ModelInfer call has been answered: its queues may close.
  impl_->infer_queues->Stop();
  INFERD_LOG(kInfo, "shutdown complete");
}

}  // namespace inferd
