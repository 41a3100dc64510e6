#include "server/communication_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/communication_proto.h"
#include "server/server_call.h"
#include "server/tensor_proto.h"

namespace inferd {
namespace {

constexpr char kService[] = "inferd.v1.Communication/";
constexpr absl::Duration kLongestWait = absl::Hours(1);

// Answers one WaitTransfer: when the engine reports (transfer done or
// deadline) or when the client cancels, whichever comes first. The shared
// state outlives the reactor, so a late engine callback finds the call
// finished.
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  struct State {
    State(MethodMetrics* metrics, pb::Transfer* response) : call(metrics), response(response) {}
    ServerCall call;
    WaitReactor* reactor = nullptr;
    pb::Transfer* const response;
  };

  explicit WaitReactor(std::shared_ptr<State> state) : state_(std::move(state)) {
    state_->reactor = this;
  }

  static void Complete(const std::shared_ptr<State>& s, absl::StatusOr<TransferInfo> info) {
    std::optional<grpc::Status> wire = s->call.End(info.status());
    if (!wire.has_value()) return;
    if (info.ok()) TransferToProto(*info, s->response);
    s->reactor->Finish(*wire);
  }

  void OnCancel() override { Complete(state_, absl::CancelledError("the client cancelled")); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

CommunicationService::CommunicationService(CommEngine* engine, GrpcMetrics* metrics)
    : engine_(engine),
      m_async_transfer_(metrics->ForMethod(absl::StrCat(kService, "AsyncTransfer"))),
      m_get_transfer_(metrics->ForMethod(absl::StrCat(kService, "GetTransfer"))),
      m_wait_transfer_(metrics->ForMethod(absl::StrCat(kService, "WaitTransfer"))),
      m_broadcast_(metrics->ForMethod(absl::StrCat(kService, "Broadcast"))),
      m_all_reduce_(metrics->ForMethod(absl::StrCat(kService, "AllReduce"))),
      m_all_gather_(metrics->ForMethod(absl::StrCat(kService, "AllGather"))),
      m_reduce_scatter_(metrics->ForMethod(absl::StrCat(kService, "ReduceScatter"))),
      m_stats_(metrics->ForMethod(absl::StrCat(kService, "GetCommunicationStats"))) {}

grpc::ServerUnaryReactor* CommunicationService::AsyncTransfer(grpc::CallbackServerContext* ctx,
                                                              const pb::AsyncTransferRequest* req,
                                                              pb::AsyncTransferResponse* resp) {
  UnaryCall call(ctx, m_async_transfer_);
  absl::StatusOr<TransferRequest> request = TransferRequestFromProto(*req);
  if (!request.ok()) return call.Finish(request.status());
  absl::StatusOr<TransferId> id = engine_->transfers().AsyncTransfer(*std::move(request));
  if (id.ok()) resp->set_transfer_id(FormatTensorId(*id));
  return call.Finish(id.status());
}

grpc::ServerUnaryReactor* CommunicationService::GetTransfer(grpc::CallbackServerContext* ctx,
                                                            const pb::GetTransferRequest* req,
                                                            pb::Transfer* resp) {
  UnaryCall call(ctx, m_get_transfer_);
  absl::StatusOr<TransferId> id = ParseTransferId(req->transfer_id());
  if (!id.ok()) return call.Finish(id.status());
  absl::StatusOr<TransferInfo> info =
      engine_->transfers().GetTransfer(*id, /*release_host_data=*/true);
  if (info.ok()) TransferToProto(*info, resp);
  return call.Finish(info.status());
}

grpc::ServerUnaryReactor* CommunicationService::WaitTransfer(grpc::CallbackServerContext* ctx,
                                                             const pb::WaitTransferRequest* req,
                                                             pb::Transfer* resp) {
  auto state = std::make_shared<WaitReactor::State>(m_wait_transfer_, resp);
  auto* reactor = new WaitReactor(state);
  absl::StatusOr<TransferId> id = ParseTransferId(req->transfer_id());
  if (!id.ok()) {
    WaitReactor::Complete(state, id.status());
    return reactor;
  }
  if (req->timeout_ms() < 0) {
    WaitReactor::Complete(state, absl::InvalidArgumentError(absl::StrCat(
                                     "timeout_ms: ", req->timeout_ms(), " is negative")));
    return reactor;
  }
  const absl::Time start = state->call.start();
  absl::Time deadline = start + kLongestWait;
  if (req->timeout_ms() > 0) {
    deadline = std::min(deadline, start + absl::Milliseconds(req->timeout_ms()));
  }
  deadline = std::min(deadline, absl::FromChrono(ctx->deadline()));
  engine_->transfers().NotifyWhenDone(*id, deadline, /*release_host_data=*/true,
                                      [state](absl::StatusOr<TransferInfo> info) {
                                        WaitReactor::Complete(state, std::move(info));
                                      });
  return reactor;
}

grpc::ServerUnaryReactor* CommunicationService::RunCollective(
    grpc::CallbackServerContext* ctx, MethodMetrics* m, absl::StatusOr<CollectiveRequest> request,
    pb::CollectiveResponse* resp) {
  auto call = std::make_shared<ServerCall>(m);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!request.ok()) {
    call->Finish(reactor, request.status());
    return reactor;
  }
  engine_->collectives().Submit(
      *std::move(request), [reactor, resp, call](absl::StatusOr<CollectiveResult> result) {
        if (result.ok()) {
          for (const TensorInfo& t : result->outputs) TensorInfoToProto(t, resp->add_outputs());
          for (int d : result->devices) resp->add_devices(d);
          resp->set_byte_size(result->bytes);
          resp->set_duration_seconds(absl::ToDoubleSeconds(result->duration));
          resp->set_implementation(result->implementation);
        }
        call->Finish(reactor, result.status());
      });
  return reactor;
}

grpc::ServerUnaryReactor* CommunicationService::Broadcast(grpc::CallbackServerContext* ctx,
                                                          const pb::BroadcastRequest* req,
                                                          pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_broadcast_,
                       CollectiveRequestFromProto(CollectiveKind::kBroadcast, *req), resp);
}

grpc::ServerUnaryReactor* CommunicationService::AllReduce(grpc::CallbackServerContext* ctx,
                                                          const pb::AllReduceRequest* req,
                                                          pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_all_reduce_,
                       CollectiveRequestFromProto(CollectiveKind::kAllReduce, *req), resp);
}

grpc::ServerUnaryReactor* CommunicationService::AllGather(grpc::CallbackServerContext* ctx,
                                                          const pb::AllGatherRequest* req,
                                                          pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_all_gather_,
                       CollectiveRequestFromProto(CollectiveKind::kAllGather, *req), resp);
}

grpc::ServerUnaryReactor* CommunicationService::ReduceScatter(grpc::CallbackServerContext* ctx,
                                                              const pb::ReduceScatterRequest* req,
                                                              pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_reduce_scatter_,
                       CollectiveRequestFromProto(CollectiveKind::kReduceScatter, *req), resp);
}

grpc::ServerUnaryReactor* CommunicationService::GetCommunicationStats(
    grpc::CallbackServerContext* ctx, const pb::GetCommunicationStatsRequest*,
    pb::CommunicationStats* resp) {
  UnaryCall call(ctx, m_stats_);
  CommStatsToProto(engine_->GetStats(), resp);
  return call.Finish(absl::OkStatus());
}

}  // namespace inferd
