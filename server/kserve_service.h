// KServeService: inference.GRPCInferenceService (KServe v2 / Open Inference
// Protocol) over the callback API. Converts wire messages to core requests
// and back; holds no policy. ModelStreamInfer lives in kserve_stream.cc,
// ModelStatistics in kserve_statistics.cc, the shared-memory RPCs in
// kserve_shared_memory.cc. Every RPC is overridden; those inferd does not
// support (TraceSetting, LogSettings) answer UNIMPLEMENTED saying why.
#ifndef INFERD_SERVER_KSERVE_SERVICE_H_
#define INFERD_SERVER_KSERVE_SERVICE_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "core/config/config.h"
#include "core/infer/infer_request.h"
#include "core/models/model_registry.h"
#include "core/models/repository_manager.h"
#include "core/sched/scheduler_options.h"
#include "core/shm/shared_memory_registry.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/grpc_metrics.h"
#include "server/infer_call.h"
#include "server/server_call.h"

namespace inferd {

// What KServeService serves from, beyond the models and the submitter.
struct KServeOptions {
  LimitsConfig limits;
  // ModelStreamInfer's cap on requests running plus responses unwritten.
  int max_stream_held_responses = 128;
  // Serves RepositoryModelLoad/Unload and the UNAVAILABLE entries of
  // RepositoryIndex; null: those RPCs answer FAILED_PRECONDITION.
  RepositoryManager* repository = nullptr;
  // Shared-memory regions; null: the shared-memory RPCs and parameters
  // answer FAILED_PRECONDITION.
  SharedMemoryRegistry* shared_memory = nullptr;
  // Registration is refused (PERMISSION_DENIED) unless true: the daemon
  // listens on loopback only, or shared_memory.allow_non_loopback is set.
  bool shared_memory_allowed = true;
  // The daemon drives a CUDA device (ServerMetadata's cuda_shared_memory).
  bool has_cuda_device = false;
  // Executions one device runs at once (max_tasks_per_device): what
  // ModelConfig reports as instances per device.
  int instances_per_device = 1;
  // The dynamic batching a model gets (ModelConfig's dynamic_batching);
  // null or nullopt: none.
  std::function<std::optional<BatchingPolicy>(const ModelSignature&)> batching;
};

// Thread-safe. Borrows everything it is given.
// One ModelInfer call in progress: the responder its execution fills, and
// the way the call ends (Send, given by the transport: server/infer_queues.h).
class ModelInferCall : public FillingResponder {
 public:
  ModelInferCall(inference::ModelInferResponse* response, MethodMetrics* metrics)
      : FillingResponder(&filler_), response_(response), filler_(response, &decoded),
        call_(metrics) {}

  // inferd::InferResponder: fills the response (or clears its outputs on
  // error), records the call and sends it, once.
  void Complete(absl::Status status) final;

  DecodedCall decoded;
  std::shared_ptr<const Model> model;  // set once decoded

 protected:
  // Sends the response with `status`; called exactly once, last (the call
  // may end its own life here).
  virtual void Send(const grpc::Status& status) = 0;

 private:
  inference::ModelInferResponse* const response_;
  ResponseFiller filler_;
  ServerCall call_;
};

// ModelInfer is served on the completion-queue API (InferQueues) as a raw
// method (the daemon parses the bytes itself, so that a request that does
// not parse is INVALID_ARGUMENT, where gRPC's own parse answers INTERNAL),
// every other RPC on the callback API. The raw mark must come first
// (innermost): gRPC does not turn a method already marked callback into a
// raw one.
namespace kserve_internal {
using G = inference::GRPCInferenceService;
using Base = G::WithCallbackMethod_ServerLive<G::WithCallbackMethod_ServerReady<
    G::WithCallbackMethod_ModelReady<G::WithCallbackMethod_ServerMetadata<
        G::WithCallbackMethod_ModelMetadata<G::WithCallbackMethod_ModelStreamInfer<
            G::WithCallbackMethod_ModelConfig<G::WithCallbackMethod_ModelStatistics<
                G::WithCallbackMethod_RepositoryIndex<G::WithCallbackMethod_RepositoryModelLoad<
                    G::WithCallbackMethod_RepositoryModelUnload<
                        G::WithCallbackMethod_SystemSharedMemoryStatus<
                            G::WithCallbackMethod_SystemSharedMemoryRegister<
                                G::WithCallbackMethod_SystemSharedMemoryUnregister<
                                    G::WithCallbackMethod_CudaSharedMemoryStatus<
                                        G::WithCallbackMethod_CudaSharedMemoryRegister<
                                            G::WithCallbackMethod_CudaSharedMemoryUnregister<
                                                G::WithCallbackMethod_TraceSetting<
                                                    G::WithCallbackMethod_LogSettings<
                                                        G::WithRawMethod_ModelInfer<
                                                            G::Service>>>>>>>>>>>>>>>>>>>>;
}  // namespace kserve_internal
using KServeServiceBase = kserve_internal::Base;

class KServeService final : public KServeServiceBase {
 public:
  KServeService(const ModelRegistry* models, InferSubmitter* submitter, KServeOptions options,
                GrpcMetrics* metrics);

  // Readiness as ServerReady reports it (also gates ModelReady).
  void SetReady(bool ready) { ready_.store(ready, std::memory_order_release); }

  // inference::GRPCInferenceService::CallbackService
  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const inference::ServerLiveRequest* req,
                                       inference::ServerLiveResponse* resp) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const inference::ServerReadyRequest* req,
                                        inference::ServerReadyResponse* resp) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* resp) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest* req,
                                           inference::ServerMetadataResponse* resp) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* resp) override;
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* ctx,
                                        const inference::ModelConfigRequest* req,
                                        inference::ModelConfigResponse* resp) override;
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* req,
                                            inference::RepositoryIndexResponse* resp) override;
  // Loads (or reloads) a repository model by name; runs the load (weights
  // read and uploaded) on the RPC thread. Parameters are refused: no file
  // or config ever travels over RPC.
  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* req,
      inference::RepositoryModelLoadResponse* resp) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* req,
      inference::RepositoryModelUnloadResponse* resp) override;
  // ModelInfer's work for one call that arrived on a completion queue:
  // decodes `req` into `call` and submits it, or completes `call` with the
  // error. `resp` is the call's response.
  void Infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* resp,
             ModelInferCall* call);
  MethodMetrics* infer_metrics() const { return m_infer_; }
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* ctx,
                                            const inference::ModelStatisticsRequest* req,
                                            inference::ModelStatisticsResponse* resp) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryStatus(
      grpc::CallbackServerContext* ctx, const inference::SystemSharedMemoryStatusRequest* req,
      inference::SystemSharedMemoryStatusResponse* resp) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryRegister(
      grpc::CallbackServerContext* ctx, const inference::SystemSharedMemoryRegisterRequest* req,
      inference::SystemSharedMemoryRegisterResponse* resp) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryUnregister(
      grpc::CallbackServerContext* ctx, const inference::SystemSharedMemoryUnregisterRequest* req,
      inference::SystemSharedMemoryUnregisterResponse* resp) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryStatus(
      grpc::CallbackServerContext* ctx, const inference::CudaSharedMemoryStatusRequest* req,
      inference::CudaSharedMemoryStatusResponse* resp) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryRegister(
      grpc::CallbackServerContext* ctx, const inference::CudaSharedMemoryRegisterRequest* req,
      inference::CudaSharedMemoryRegisterResponse* resp) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryUnregister(
      grpc::CallbackServerContext* ctx, const inference::CudaSharedMemoryUnregisterRequest* req,
      inference::CudaSharedMemoryUnregisterResponse* resp) override;
  grpc::ServerUnaryReactor* TraceSetting(grpc::CallbackServerContext* ctx,
                                         const inference::TraceSettingRequest* req,
                                         inference::TraceSettingResponse* resp) override;
  grpc::ServerUnaryReactor* LogSettings(grpc::CallbackServerContext* ctx,
                                        const inference::LogSettingsRequest* req,
                                        inference::LogSettingsResponse* resp) override;

 private:
  // Checks a shared-memory RPC may run (registry present; registration
  // allowed when `registering`).
  absl::Status CheckSharedMemory(bool registering) const;

  const ModelRegistry* const models_;
  InferSubmitter* const submitter_;
  const KServeOptions options_;
  const LimitsConfig& limits_ = options_.limits;
  std::atomic<bool> ready_{false};
  MethodMetrics* const m_live_;
  MethodMetrics* const m_ready_;
  MethodMetrics* const m_model_ready_;
  MethodMetrics* const m_server_metadata_;
  MethodMetrics* const m_model_metadata_;
  MethodMetrics* const m_model_config_;
  MethodMetrics* const m_repository_index_;
  RepositoryManager* const repository_ = options_.repository;
  SharedMemoryRegistry* const shm_ = options_.shared_memory;
  MethodMetrics* const m_repository_load_;
  MethodMetrics* const m_repository_unload_;
  MethodMetrics* const m_infer_;
  MethodMetrics* const m_stream_infer_;
  MethodMetrics* const m_statistics_;
  MethodMetrics* const m_shm_status_;
  MethodMetrics* const m_shm_register_;
  MethodMetrics* const m_shm_unregister_;
  MethodMetrics* const m_cuda_shm_status_;
  MethodMetrics* const m_cuda_shm_register_;
  MethodMetrics* const m_cuda_shm_unregister_;
  MethodMetrics* const m_trace_;
  MethodMetrics* const m_log_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_KSERVE_SERVICE_H_
