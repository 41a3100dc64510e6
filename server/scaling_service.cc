#include "server/scaling_service.h"

#include "absl/strings/str_cat.h"
#include "server/scaling_proto.h"
#include "server/server_call.h"

namespace inferd {
namespace {

constexpr char kService[] = "inferd.v1.Scaling/";

}  // namespace

ScalingService::ScalingService(DynamicScaler* scaler, GrpcMetrics* metrics)
    : scaler_(scaler),
      m_collect_(metrics->ForMethod(absl::StrCat(kService, "CollectWorkloadMetrics"))),
      m_stats_(metrics->ForMethod(absl::StrCat(kService, "GetScalingStats"))),
      m_events_(metrics->ForMethod(absl::StrCat(kService, "GetScalingEvents"))),
      m_set_policy_(metrics->ForMethod(absl::StrCat(kService, "SetScalingPolicy"))),
      m_get_policy_(metrics->ForMethod(absl::StrCat(kService, "GetScalingPolicy"))) {}

grpc::ServerUnaryReactor* ScalingService::CollectWorkloadMetrics(
    grpc::CallbackServerContext* ctx, const v1::CollectWorkloadMetricsRequest* req,
    v1::CollectWorkloadMetricsResponse*) {
  UnaryCall call(ctx, m_collect_);
  return call.Finish(scaler_->CollectWorkloadMetrics(req->queue_length(), req->processing_time(),
                                                     req->throughput()));
}

grpc::ServerUnaryReactor* ScalingService::GetScalingStats(grpc::CallbackServerContext* ctx,
                                                          const v1::GetScalingStatsRequest*,
                                                          v1::GetScalingStatsResponse* resp) {
  UnaryCall call(ctx, m_stats_);
  ScalingStatsToProto(scaler_->GetStats(), resp);
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* ScalingService::GetScalingEvents(grpc::CallbackServerContext* ctx,
                                                           const v1::GetScalingEventsRequest* req,
                                                           v1::GetScalingEventsResponse* resp) {
  UnaryCall call(ctx, m_events_);
  for (const ScalingEvent& event : scaler_->GetEvents(req->limit())) {
    EventToProto(event, resp->add_events());
  }
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* ScalingService::SetScalingPolicy(grpc::CallbackServerContext* ctx,
                                                           const v1::SetScalingPolicyRequest* req,
                                                           v1::SetScalingPolicyResponse* resp) {
  UnaryCall call(ctx, m_set_policy_);
  if (!req->has_policy()) {
    return call.Finish(absl::InvalidArgumentError("policy: must be set"));
  }
  absl::StatusOr<ScalingPolicy> policy = PolicyFromProto(req->policy());
  if (!policy.ok()) return call.Finish(policy.status());
  if (absl::Status st = scaler_->SetPolicy(*policy); !st.ok()) {
    return call.Finish(RenamePolicyField(st, PolicyFieldName));
  }
  PolicyToProto(scaler_->GetPolicy(), resp->mutable_policy());
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* ScalingService::GetScalingPolicy(grpc::CallbackServerContext* ctx,
                                                           const v1::GetScalingPolicyRequest*,
                                                           v1::GetScalingPolicyResponse* resp) {
  UnaryCall call(ctx, m_get_policy_);
  PolicyToProto(scaler_->GetPolicy(), resp->mutable_policy());
  return call.Finish(absl::OkStatus());
}

}  // namespace inferd
