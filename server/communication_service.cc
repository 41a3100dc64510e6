#include "server/communication_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/util/echo.h"
#include "server/status_util.h"
#include "server/tensor_proto.h"

namespace inferd {
namespace {

constexpr char kService[] = "inferd.v1.Communication/";
constexpr absl::Duration kLongestWait = absl::Hours(1);

namespace pb = inferd::v1;

int64_t UnixMs(absl::Time t) { return t == absl::InfinitePast() ? 0 : absl::ToUnixMillis(t); }

pb::LinkKind ToProto(LinkKind k) {
  switch (k) {
    case LinkKind::kHostToDevice:
      return pb::LINK_KIND_HOST_TO_DEVICE;
    case LinkKind::kDeviceToHost:
      return pb::LINK_KIND_DEVICE_TO_HOST;
    case LinkKind::kLocal:
      return pb::LINK_KIND_LOCAL;
    case LinkKind::kPeer:
      return pb::LINK_KIND_PEER;
    case LinkKind::kStaged:
      return pb::LINK_KIND_STAGED;
  }
  return pb::LINK_KIND_UNSPECIFIED;
}

pb::Priority ToProto(TransferPriority p) {
  return static_cast<pb::Priority>(static_cast<int>(p) + 1);
}

absl::StatusOr<TransferPriority> FromProto(pb::Priority p) {
  if (p == pb::PRIORITY_UNSPECIFIED) return TransferPriority::kNormal;
  if (p < pb::PRIORITY_CRITICAL || p > pb::PRIORITY_BACKGROUND) {
    return absl::InvalidArgumentError(absl::StrCat("priority: unknown value ", p));
  }
  return static_cast<TransferPriority>(p - 1);
}

absl::StatusOr<CollectiveReduceOp> FromProto(pb::ReduceOp op) {
  switch (op) {
    case pb::REDUCE_OP_UNSPECIFIED:
    case pb::REDUCE_OP_SUM:
      return CollectiveReduceOp::kSum;
    case pb::REDUCE_OP_PROD:
      return CollectiveReduceOp::kProd;
    case pb::REDUCE_OP_MIN:
      return CollectiveReduceOp::kMin;
    case pb::REDUCE_OP_MAX:
      return CollectiveReduceOp::kMax;
    case pb::REDUCE_OP_AVG:
      return CollectiveReduceOp::kAvg;
    default:
      return absl::InvalidArgumentError(absl::StrCat("op: unknown value ", op));
  }
}

pb::TransferState ToProto(TransferState s) {
  switch (s) {
    case TransferState::kQueued:
      return pb::TRANSFER_STATE_QUEUED;
    case TransferState::kRunning:
      return pb::TRANSFER_STATE_RUNNING;
    case TransferState::kSucceeded:
      return pb::TRANSFER_STATE_SUCCEEDED;
    case TransferState::kFailed:
      return pb::TRANSFER_STATE_FAILED;
  }
  return pb::TRANSFER_STATE_UNSPECIFIED;
}

void ToProto(const TransferInfo& in, pb::Transfer* out) {
  out->set_transfer_id(FormatTensorId(in.id));
  out->set_state(ToProto(in.state));
  if (!in.status.ok()) {
    out->set_error_code(static_cast<int32_t>(in.status.code()));
    out->set_error_message(std::string(in.status.message()));
  }
  out->set_src_device(in.src);
  out->set_dst_device(in.dst);
  out->set_link(in.link);
  out->set_link_kind(ToProto(in.kind));
  out->set_priority(ToProto(in.priority));
  out->set_move(in.move);
  if (in.source_tensor.valid()) out->set_source_tensor_id(FormatTensorId(in.source_tensor));
  if (in.result.has_value()) TensorInfoToProto(*in.result, out->mutable_result());
  if (in.host_data != nullptr) out->set_data(*in.host_data);
  out->set_data_released(in.host_data_released);
  out->set_byte_size(in.bytes);
  out->set_chunks(in.chunks);
  out->set_chunks_done(in.chunks_done);
  out->set_source_freed(in.source_freed);
  out->set_source_free_error(in.source_free_error);
  out->set_enqueued_unix_ms(UnixMs(in.enqueued));
  out->set_started_unix_ms(UnixMs(in.started));
  out->set_finished_unix_ms(UnixMs(in.finished));
  if (in.state == TransferState::kSucceeded && in.finished > in.started) {
    out->set_bandwidth_bytes_per_second(static_cast<double>(in.bytes) /
                                        absl::ToDoubleSeconds(in.finished - in.started));
  }
}

absl::StatusOr<TransferId> ParseTransferId(const std::string& text) {
  return ParseTensorId(text, "transfer_id");
}

absl::StatusOr<std::vector<TensorId>> ParseIds(
    const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::vector<TensorId> out;
  for (int i = 0; i < ids.size(); ++i) {
    absl::StatusOr<TensorId> id = ParseTensorId(ids[i], absl::StrCat("tensor_ids[", i, "]"));
    if (!id.ok()) return id.status();
    out.push_back(*id);
  }
  return out;
}

absl::StatusOr<absl::Duration> Lease(int64_t lease_ms) {
  if (lease_ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat("lease_ms: ", lease_ms, " is negative"));
  }
  return absl::Milliseconds(lease_ms);
}

absl::StatusOr<TransferRequest> DecodeTransfer(const pb::AsyncTransferRequest& wire) {
  TransferRequest r;
  switch (wire.source_case()) {
    case pb::AsyncTransferRequest::kTensorId: {
      absl::StatusOr<TensorId> id = ParseTensorId(wire.tensor_id(), "tensor_id");
      if (!id.ok()) return id.status();
      r.source_tensor = *id;
      break;
    }
    case pb::AsyncTransferRequest::kInlineTensor: {
      const pb::InlineTensor& t = wire.inline_tensor();
      std::optional<DataType> dtype = ParseDataType(t.datatype());
      if (!dtype) {
        return absl::InvalidArgumentError(
            absl::StrCat("inline_tensor.datatype: unsupported ", Echo(t.datatype())));
      }
      r.dtype = *dtype;
      r.shape.assign(t.shape().begin(), t.shape().end());
      auto data = std::make_shared<std::string>(t.data());
      r.host_source = HostSource{data->data(), data->size(), false, data};
      break;
    }
    default:
      return absl::InvalidArgumentError("source: set tensor_id or inline_tensor");
  }
  r.dst_device = wire.to_host() ? kHostEndpoint : wire.dst_device();
  absl::StatusOr<TransferPriority> priority = FromProto(wire.priority());
  if (!priority.ok()) return priority.status();
  r.priority = *priority;
  r.move = wire.move();
  r.owner = wire.owner();
  absl::StatusOr<absl::Duration> lease = Lease(wire.lease_ms());
  if (!lease.ok()) return lease.status();
  r.lease = *lease;
  return r;
}

// Answers one WaitTransfer: when the engine reports (transfer done or
// deadline) or when the client cancels, whichever comes first. The shared
// state outlives the reactor, so a late engine callback finds it finished.
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  struct State {
    absl::Mutex mu;
    bool finished ABSL_GUARDED_BY(mu) = false;
    WaitReactor* reactor = nullptr;
    pb::Transfer* response = nullptr;
    MethodMetrics* metrics = nullptr;
    absl::Time start;
  };

  explicit WaitReactor(std::shared_ptr<State> state) : state_(std::move(state)) {
    state_->reactor = this;
  }

  static void Complete(const std::shared_ptr<State>& s, absl::StatusOr<TransferInfo> info) {
    {
      absl::MutexLock lock(&s->mu);
      if (s->finished) return;
      s->finished = true;
    }
    if (info.ok()) ToProto(*info, s->response);
    grpc::Status st = ToGrpcStatus(info.status());
    s->metrics->Record(st.error_code(), absl::Now() - s->start);
    s->reactor->Finish(st);
  }

  void OnCancel() override { Complete(state_, absl::CancelledError("the client cancelled")); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

void CommStatsToProto(const CommStats& s, v1::CommunicationStats* out) {
  for (const LinkStats& l : s.links) {
    pb::LinkStats* o = out->add_links();
    o->set_link(l.link);
    o->set_src_device(l.src);
    o->set_dst_device(l.dst);
    o->set_kind(ToProto(l.kind));
    o->set_bytes(l.bytes);
    o->set_transfers(l.transfers);
    o->set_errors(l.errors);
    o->set_queued(l.queued);
    o->set_bandwidth_bytes_per_second(l.bandwidth_bytes_per_second);
    o->set_peak_bytes_per_second(l.peak_bytes_per_second);
    o->set_limit_bytes_per_second(l.limit_bytes_per_second);
  }
  for (const OpStats& op : s.ops) {
    pb::OpStats* o = out->add_ops();
    o->set_op(CommOpName(op.op));
    o->set_operations(op.operations);
    o->set_bytes(op.bytes);
    o->set_errors(op.errors);
    o->set_total_seconds(op.total_seconds);
  }
  for (int p = 0; p < kNumTransferPriorities; ++p) {
    pb::QueueDepth* q = out->add_queue_depth();
    q->set_priority(ToProto(static_cast<TransferPriority>(p)));
    q->set_depth(s.queue_depth[p]);
  }
  out->set_active_transfers(s.active_transfers);
  for (int k = 0; k < kNumLinkKinds; ++k) {
    pb::LinkCalibration* c = out->add_calibration();
    c->set_kind(ToProto(static_cast<LinkKind>(k)));
    c->set_peak_bytes_per_second(s.peaks.bytes_per_second[k]);
  }
  out->set_calibration_measured(s.peaks.measured);
  out->set_nccl_enabled(s.nccl_enabled);
  out->set_chunk_bytes(s.chunk_bytes);
  out->set_overlap_threshold_bytes(s.overlap_threshold_bytes);
  out->set_bandwidth_limit(s.bandwidth_limit);
  out->set_communicators(s.communicators);
  out->set_communicators_created(s.communicators_created);
  out->set_communicator_rebuilds(s.communicator_rebuilds);
}

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

grpc::ServerUnaryReactor* CommunicationService::Finish(grpc::CallbackServerContext* ctx,
                                                       MethodMetrics* m, absl::Time start,
                                                       const absl::Status& status) {
  grpc::Status st = ToGrpcStatus(status);
  m->Record(st.error_code(), absl::Now() - start);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(st);
  return reactor;
}

grpc::ServerUnaryReactor* CommunicationService::AsyncTransfer(grpc::CallbackServerContext* ctx,
                                                              const pb::AsyncTransferRequest* req,
                                                              pb::AsyncTransferResponse* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TransferRequest> request = DecodeTransfer(*req);
  if (!request.ok()) return Finish(ctx, m_async_transfer_, start, request.status());
  absl::StatusOr<TransferId> id = engine_->transfers().AsyncTransfer(*std::move(request));
  if (id.ok()) resp->set_transfer_id(FormatTensorId(*id));
  return Finish(ctx, m_async_transfer_, start, id.status());
}

grpc::ServerUnaryReactor* CommunicationService::GetTransfer(grpc::CallbackServerContext* ctx,
                                                            const pb::GetTransferRequest* req,
                                                            pb::Transfer* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TransferId> id = ParseTransferId(req->transfer_id());
  if (!id.ok()) return Finish(ctx, m_get_transfer_, start, id.status());
  absl::StatusOr<TransferInfo> info =
      engine_->transfers().GetTransfer(*id, /*release_host_data=*/true);
  if (info.ok()) ToProto(*info, resp);
  return Finish(ctx, m_get_transfer_, start, info.status());
}

grpc::ServerUnaryReactor* CommunicationService::WaitTransfer(grpc::CallbackServerContext* ctx,
                                                             const pb::WaitTransferRequest* req,
                                                             pb::Transfer* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TransferId> id = ParseTransferId(req->transfer_id());
  if (!id.ok()) return Finish(ctx, m_wait_transfer_, start, id.status());
  if (req->timeout_ms() < 0) {
    return Finish(ctx, m_wait_transfer_, start,
                  absl::InvalidArgumentError(
                      absl::StrCat("timeout_ms: ", req->timeout_ms(), " is negative")));
  }
  absl::Time deadline = start + kLongestWait;
  if (req->timeout_ms() > 0) {
    deadline = std::min(deadline, start + absl::Milliseconds(req->timeout_ms()));
  }
  deadline = std::min(deadline, absl::FromChrono(ctx->deadline()));
  auto state = std::make_shared<WaitReactor::State>();
  state->response = resp;
  state->metrics = m_wait_transfer_;
  state->start = start;
  auto* reactor = new WaitReactor(state);
  engine_->transfers().NotifyWhenDone(*id, deadline, /*release_host_data=*/true,
                                      [state](absl::StatusOr<TransferInfo> info) {
                                        WaitReactor::Complete(state, std::move(info));
                                      });
  return reactor;
}

grpc::ServerUnaryReactor* CommunicationService::RunCollective(
    grpc::CallbackServerContext* ctx, MethodMetrics* m, absl::StatusOr<CollectiveRequest> request,
    pb::CollectiveResponse* resp) {
  const absl::Time start = absl::Now();
  if (!request.ok()) return Finish(ctx, m, start, request.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  engine_->collectives().Submit(
      *std::move(request), [reactor, resp, m, start](absl::StatusOr<CollectiveResult> result) {
        if (result.ok()) {
          for (const TensorInfo& t : result->outputs) TensorInfoToProto(t, resp->add_outputs());
          for (int d : result->devices) resp->add_devices(d);
          resp->set_byte_size(result->bytes);
          resp->set_duration_seconds(absl::ToDoubleSeconds(result->duration));
          resp->set_implementation(result->implementation);
        }
        grpc::Status st = ToGrpcStatus(result.status());
        m->Record(st.error_code(), absl::Now() - start);
        reactor->Finish(st);
      });
  return reactor;
}

namespace {

// Decodes what the collective messages share: the tensors, and where the
// message has them, the root, the reduction and the lease of new tensors.
template <typename Request>
absl::StatusOr<CollectiveRequest> DecodeCollective(CollectiveKind kind, const Request& req) {
  CollectiveRequest r;
  r.kind = kind;
  absl::StatusOr<std::vector<TensorId>> ids = ParseIds(req.tensor_ids());
  if (!ids.ok()) return ids.status();
  r.tensors = *std::move(ids);
  if constexpr (requires { req.root(); }) r.root = req.root();
  if constexpr (requires { req.op(); }) {
    absl::StatusOr<CollectiveReduceOp> op = FromProto(req.op());
    if (!op.ok()) return op.status();
    r.op = *op;
  }
  if constexpr (requires { req.lease_ms(); }) {
    absl::StatusOr<absl::Duration> lease = Lease(req.lease_ms());
    if (!lease.ok()) return lease.status();
    r.lease = *lease;
  }
  return r;
}

}  // namespace

grpc::ServerUnaryReactor* CommunicationService::Broadcast(grpc::CallbackServerContext* ctx,
                                                          const pb::BroadcastRequest* req,
                                                          pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_broadcast_, DecodeCollective(CollectiveKind::kBroadcast, *req),
                       resp);
}

grpc::ServerUnaryReactor* CommunicationService::AllReduce(grpc::CallbackServerContext* ctx,
                                                          const pb::AllReduceRequest* req,
                                                          pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_all_reduce_, DecodeCollective(CollectiveKind::kAllReduce, *req),
                       resp);
}

grpc::ServerUnaryReactor* CommunicationService::AllGather(grpc::CallbackServerContext* ctx,
                                                          const pb::AllGatherRequest* req,
                                                          pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_all_gather_, DecodeCollective(CollectiveKind::kAllGather, *req),
                       resp);
}

grpc::ServerUnaryReactor* CommunicationService::ReduceScatter(grpc::CallbackServerContext* ctx,
                                                              const pb::ReduceScatterRequest* req,
                                                              pb::CollectiveResponse* resp) {
  return RunCollective(ctx, m_reduce_scatter_,
                       DecodeCollective(CollectiveKind::kReduceScatter, *req), resp);
}

grpc::ServerUnaryReactor* CommunicationService::GetCommunicationStats(
    grpc::CallbackServerContext* ctx, const pb::GetCommunicationStatsRequest*,
    pb::CommunicationStats* resp) {
  const absl::Time start = absl::Now();
  CommStatsToProto(engine_->GetStats(), resp);
  return Finish(ctx, m_stats_, start, absl::OkStatus());
}

}  // namespace inferd
