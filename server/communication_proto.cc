#include "server/communication_proto.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/echo.h"
#include "server/common_proto.h"
#include "server/tensor_proto.h"

namespace inferd {

pb::LinkKind LinkKindToProto(LinkKind k) {
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

absl::StatusOr<CollectiveReduceOp> ReduceOpFromProto(pb::ReduceOp op) {
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

pb::TransferState TransferStateToProto(TransferState s) {
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

void TransferToProto(const TransferInfo& in, pb::Transfer* out) {
  out->set_transfer_id(FormatTensorId(in.id));
  out->set_state(TransferStateToProto(in.state));
  if (!in.status.ok()) {
    out->set_error_code(static_cast<int32_t>(in.status.code()));
    out->set_error_message(std::string(in.status.message()));
  }
  out->set_src_device(in.src);
  out->set_dst_device(in.dst);
  out->set_link(in.link);
  out->set_link_kind(LinkKindToProto(in.kind));
  out->set_priority(PriorityToProto(in.priority));
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
  out->set_enqueued_unix_ms(UnixMillis(in.enqueued));
  out->set_started_unix_ms(UnixMillis(in.started));
  out->set_finished_unix_ms(UnixMillis(in.finished));
  if (in.state == TransferState::kSucceeded && in.finished > in.started) {
    out->set_bandwidth_bytes_per_second(static_cast<double>(in.bytes) /
                                        absl::ToDoubleSeconds(in.finished - in.started));
  }
}

absl::StatusOr<TransferId> ParseTransferId(const std::string& text) {
  return ParseTensorId(text, "transfer_id");
}

absl::StatusOr<std::vector<TensorId>> TensorIdsFromProto(
    const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::vector<TensorId> out;
  for (int i = 0; i < ids.size(); ++i) {
    absl::StatusOr<TensorId> id = ParseTensorId(ids[i], absl::StrCat("tensor_ids[", i, "]"));
    if (!id.ok()) return id.status();
    out.push_back(*id);
  }
  return out;
}

absl::StatusOr<absl::Duration> LeaseMsFromProto(int64_t lease_ms) {
  if (lease_ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat("lease_ms: ", lease_ms, " is negative"));
  }
  return absl::Milliseconds(lease_ms);
}

absl::StatusOr<TransferRequest> TransferRequestFromProto(const pb::AsyncTransferRequest& wire) {
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
  absl::StatusOr<Priority> priority = PriorityFromProto(wire.priority(), "priority");
  if (!priority.ok()) return priority.status();
  r.priority = *priority;
  r.move = wire.move();
  r.owner = wire.owner();
  absl::StatusOr<absl::Duration> lease = LeaseMsFromProto(wire.lease_ms());
  if (!lease.ok()) return lease.status();
  r.lease = *lease;
  return r;
}

void CommStatsToProto(const CommStats& s, v1::CommunicationStats* out) {
  for (const LinkStats& l : s.links) {
    pb::LinkStats* o = out->add_links();
    o->set_link(l.link);
    o->set_src_device(l.src);
    o->set_dst_device(l.dst);
    o->set_kind(LinkKindToProto(l.kind));
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
    q->set_priority(PriorityToProto(static_cast<Priority>(p)));
    q->set_depth(s.queue_depth[p]);
  }
  out->set_active_transfers(s.active_transfers);
  for (int k = 0; k < kNumLinkKinds; ++k) {
    pb::LinkCalibration* c = out->add_calibration();
    c->set_kind(LinkKindToProto(static_cast<LinkKind>(k)));
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

}  // namespace inferd
