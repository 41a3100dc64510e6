// KServeService: inference.GRPCInferenceService (KServe v2 / Open Inference
// Protocol) over the callback API. Converts wire messages to core requests
// and back; holds no policy. RPCs not overridden answer UNIMPLEMENTED.
#ifndef INFERD_SERVER_KSERVE_SERVICE_H_
#define INFERD_SERVER_KSERVE_SERVICE_H_

#include <atomic>
#include <string>

#include "core/config/config.h"
#include "core/infer/infer_request.h"
#include "core/models/model_registry.h"
#include "core/models/repository_manager.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/grpc_metrics.h"

namespace inferd {

// Thread-safe. Borrows everything it is given.
class KServeService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // `repository` (may be null) serves RepositoryModelLoad/Unload and the
  // UNAVAILABLE entries of RepositoryIndex; without it those RPCs answer
  // FAILED_PRECONDITION.
  KServeService(const ModelRegistry* models, InferSubmitter* submitter,
                const LimitsConfig& limits, GrpcMetrics* metrics,
                RepositoryManager* repository = nullptr);

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
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override;

 private:
  const ModelRegistry* const models_;
  InferSubmitter* const submitter_;
  const LimitsConfig limits_;
  std::atomic<bool> ready_{false};
  MethodMetrics* const m_live_;
  MethodMetrics* const m_ready_;
  MethodMetrics* const m_model_ready_;
  MethodMetrics* const m_server_metadata_;
  MethodMetrics* const m_model_metadata_;
  MethodMetrics* const m_model_config_;
  MethodMetrics* const m_repository_index_;
  RepositoryManager* const repository_;
  MethodMetrics* const m_repository_load_;
  MethodMetrics* const m_repository_unload_;
  MethodMetrics* const m_infer_;
};

// Parses a ModelInferRequest into `request` (model looked up, inputs bound
// and validated). `storage` keeps bytes decoded from typed contents and must
// outlive the request. Exposed for tests.
absl::Status DecodeInferRequest(const inference::ModelInferRequest& wire,
                                const ModelRegistry& models, const LimitsConfig& limits,
                                InferRequest* request, std::vector<std::string>* storage,
                                uint64_t* requested_outputs_mask);

}  // namespace inferd

#endif  // INFERD_SERVER_KSERVE_SERVICE_H_
