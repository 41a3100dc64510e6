#include "server/server_call.h"

#include "server/status_util.h"

namespace inferd {

std::optional<grpc::Status> ServerCall::End(const absl::Status& status) {
  if (finished_.exchange(true, std::memory_order_acq_rel)) return std::nullopt;
  grpc::Status wire = ToGrpcStatus(status);
  if (metrics_ != nullptr) metrics_->Record(wire.error_code(), clock_->Now() - start_);
  return wire;
}

grpc::ServerUnaryReactor* UnaryCall::Finish(const absl::Status& status) {
  if (reactor_ == nullptr) reactor_ = ctx_->DefaultReactor();
  call_.Finish(reactor_, status);
  return reactor_;
}

}  // namespace inferd
