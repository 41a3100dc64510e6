// CommunicationService: inferd.v1.Communication over the callback API.
// Converts wire messages to comm engine requests and back; holds no policy.
// No RPC holds a thread while it waits: WaitTransfer and the collectives
// finish from the engine's completion callbacks.
#ifndef INFERD_SERVER_COMMUNICATION_SERVICE_H_
#define INFERD_SERVER_COMMUNICATION_SERVICE_H_

#include <cstdint>

#include "core/comm/comm_engine.h"
#include "core/memory/memory_engine.h"
#include "inferd/v1/communication.grpc.pb.h"
#include "server/grpc_metrics.h"

namespace inferd {

// Thread-safe. Borrows everything it is given.
class CommunicationService final : public inferd::v1::Communication::CallbackService {
 public:
  // Results for the client are bounded by the engine's options
  // (TransferEngineOptions::max_host_result_bytes, max_held_host_bytes).
  CommunicationService(CommEngine* engine, GrpcMetrics* metrics);

  // inferd::v1::Communication::CallbackService
  grpc::ServerUnaryReactor* AsyncTransfer(grpc::CallbackServerContext* ctx,
                                          const inferd::v1::AsyncTransferRequest* req,
                                          inferd::v1::AsyncTransferResponse* resp) override;
  grpc::ServerUnaryReactor* GetTransfer(grpc::CallbackServerContext* ctx,
                                        const inferd::v1::GetTransferRequest* req,
                                        inferd::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* WaitTransfer(grpc::CallbackServerContext* ctx,
                                         const inferd::v1::WaitTransferRequest* req,
                                         inferd::v1::Transfer* resp) override;
  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* ctx,
                                      const inferd::v1::BroadcastRequest* req,
                                      inferd::v1::CollectiveResponse* resp) override;
  grpc::ServerUnaryReactor* AllReduce(grpc::CallbackServerContext* ctx,
                                      const inferd::v1::AllReduceRequest* req,
                                      inferd::v1::CollectiveResponse* resp) override;
  grpc::ServerUnaryReactor* AllGather(grpc::CallbackServerContext* ctx,
                                      const inferd::v1::AllGatherRequest* req,
                                      inferd::v1::CollectiveResponse* resp) override;
  grpc::ServerUnaryReactor* ReduceScatter(grpc::CallbackServerContext* ctx,
                                          const inferd::v1::ReduceScatterRequest* req,
                                          inferd::v1::CollectiveResponse* resp) override;
  grpc::ServerUnaryReactor* GetCommunicationStats(
      grpc::CallbackServerContext* ctx, const inferd::v1::GetCommunicationStatsRequest* req,
      inferd::v1::CommunicationStats* resp) override;

 private:
  grpc::ServerUnaryReactor* RunCollective(grpc::CallbackServerContext* ctx, MethodMetrics* m,
                                          absl::StatusOr<CollectiveRequest> request,
                                          inferd::v1::CollectiveResponse* resp);

  CommEngine* const engine_;
  MethodMetrics* const m_async_transfer_;
  MethodMetrics* const m_get_transfer_;
  MethodMetrics* const m_wait_transfer_;
  MethodMetrics* const m_broadcast_;
  MethodMetrics* const m_all_reduce_;
  MethodMetrics* const m_all_gather_;
  MethodMetrics* const m_reduce_scatter_;
  MethodMetrics* const m_stats_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_COMMUNICATION_SERVICE_H_
