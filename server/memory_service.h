// MemoryService: inferd.v1.Memory over the callback API — an adapter over
// MemoryEngine with no policy of its own.
#ifndef INFERD_SERVER_MEMORY_SERVICE_H_
#define INFERD_SERVER_MEMORY_SERVICE_H_

#include "core/memory/memory_engine.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "server/grpc_metrics.h"

namespace inferd {

// Thread-safe. Borrows the engine and metrics.
class MemoryService final : public v1::Memory::CallbackService {
 public:
  MemoryService(MemoryEngine* engine, GrpcMetrics* metrics);

  // v1::Memory::CallbackService
  grpc::ServerUnaryReactor* AllocateTensor(grpc::CallbackServerContext* ctx,
                                           const v1::AllocateTensorRequest* req,
                                           v1::TensorInfo* resp) override;
  grpc::ServerReadReactor<v1::UploadTensorRequest>* UploadTensor(
      grpc::CallbackServerContext* ctx, v1::TensorInfo* resp) override;
  grpc::ServerWriteReactor<v1::DownloadTensorResponse>* DownloadTensor(
      grpc::CallbackServerContext* ctx, const v1::DownloadTensorRequest* req) override;
  grpc::ServerUnaryReactor* FreeTensor(grpc::CallbackServerContext* ctx,
                                       const v1::FreeTensorRequest* req,
                                       v1::FreeTensorResponse* resp) override;
  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* ctx,
                                       const v1::RenewLeaseRequest* req,
                                       v1::TensorInfo* resp) override;
  grpc::ServerUnaryReactor* GetTensor(grpc::CallbackServerContext* ctx,
                                      const v1::GetTensorRequest* req,
                                      v1::TensorInfo* resp) override;
  grpc::ServerUnaryReactor* ListTensors(grpc::CallbackServerContext* ctx,
                                        const v1::ListTensorsRequest* req,
                                        v1::ListTensorsResponse* resp) override;
  grpc::ServerUnaryReactor* GetOptimalBatchSize(grpc::CallbackServerContext* ctx,
                                                const v1::GetOptimalBatchSizeRequest* req,
                                                v1::GetOptimalBatchSizeResponse* resp) override;
  grpc::ServerUnaryReactor* GetMemoryStats(grpc::CallbackServerContext* ctx,
                                           const v1::GetMemoryStatsRequest* req,
                                           v1::MemoryStats* resp) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const v1::CompactRequest* req,
                                    v1::CompactResponse* resp) override;

 private:
  MemoryEngine* const engine_;
  MethodMetrics* m_allocate_;
  MethodMetrics* m_upload_;
  MethodMetrics* m_download_;
  MethodMetrics* m_free_;
  MethodMetrics* m_renew_;
  MethodMetrics* m_get_;
  MethodMetrics* m_list_;
  MethodMetrics* m_batch_;
  MethodMetrics* m_stats_;
  MethodMetrics* m_compact_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_MEMORY_SERVICE_H_
