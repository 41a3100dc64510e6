// Conversions between inferd.v1.Communication messages and the comm
// engine's plain structs (core/comm/). Errors are INVALID_ARGUMENT naming
// the wire field, e.g. "inline_tensor.datatype: unsupported 'X'".
#ifndef INFERD_SERVER_COMMUNICATION_PROTO_H_
#define INFERD_SERVER_COMMUNICATION_PROTO_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/comm/comm_engine.h"
#include "inferd/v1/communication.pb.h"

namespace inferd {

namespace pb = inferd::v1;

pb::LinkKind LinkKindToProto(LinkKind kind);
pb::TransferState TransferStateToProto(TransferState state);
// REDUCE_OP_UNSPECIFIED means SUM; unknown numbers are refused ("op: ...").
absl::StatusOr<CollectiveReduceOp> ReduceOpFromProto(pb::ReduceOp op);
void TransferToProto(const TransferInfo& info, pb::Transfer* out);
// Fills `out` with GetCommunicationStats' answer (also for the report).
void CommStatsToProto(const CommStats& stats, pb::CommunicationStats* out);

absl::StatusOr<TransferId> ParseTransferId(const std::string& text);
// tensor_ids[i], each a tensor id.
absl::StatusOr<std::vector<TensorId>> TensorIdsFromProto(
    const google::protobuf::RepeatedPtrField<std::string>& ids);
// lease_ms >= 0.
absl::StatusOr<absl::Duration> LeaseMsFromProto(int64_t lease_ms);
absl::StatusOr<TransferRequest> TransferRequestFromProto(const pb::AsyncTransferRequest& wire);

// Decodes what the collective messages (BroadcastRequest, AllReduceRequest,
// AllGatherRequest, ReduceScatterRequest) share: the tensors, and where the
// message has them, the root, the reduction and the lease of new tensors.
template <typename Request>
absl::StatusOr<CollectiveRequest> CollectiveRequestFromProto(CollectiveKind kind,
                                                             const Request& req) {
  CollectiveRequest r;
  r.kind = kind;
  absl::StatusOr<std::vector<TensorId>> ids = TensorIdsFromProto(req.tensor_ids());
  if (!ids.ok()) return ids.status();
  r.tensors = *std::move(ids);
  if constexpr (requires { req.root(); }) r.root = req.root();
  if constexpr (requires { req.op(); }) {
    absl::StatusOr<CollectiveReduceOp> op = ReduceOpFromProto(req.op());
    if (!op.ok()) return op.status();
    r.op = *op;
  }
  if constexpr (requires { req.lease_ms(); }) {
    absl::StatusOr<absl::Duration> lease = LeaseMsFromProto(req.lease_ms());
    if (!lease.ok()) return lease.status();
    r.lease = *lease;
  }
  return r;
}

}  // namespace inferd

#endif  // INFERD_SERVER_COMMUNICATION_PROTO_H_
