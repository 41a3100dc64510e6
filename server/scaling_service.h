// ScalingService: inferd.v1.Scaling over the callback API. Converts wire
// messages to the DynamicScaler's plain structs and back; holds no policy
// (validation, decisions and history are the scaler's).
#ifndef INFERD_SERVER_SCALING_SERVICE_H_
#define INFERD_SERVER_SCALING_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/scaling/scaling_event.h"
#include "core/scaling/scaling_policy.h"
#include "inferd/v1/scaling.grpc.pb.h"
#include "server/grpc_metrics.h"

namespace inferd {

// Thread-safe (the scaler is). Borrows the scaler and the metrics, which
// must outlive it.
class ScalingService final : public inferd::v1::Scaling::CallbackService {
 public:
  ScalingService(DynamicScaler* scaler, GrpcMetrics* metrics);

  // inferd::v1::Scaling::CallbackService
  grpc::ServerUnaryReactor* CollectWorkloadMetrics(
      grpc::CallbackServerContext* ctx, const v1::CollectWorkloadMetricsRequest* req,
      v1::CollectWorkloadMetricsResponse* resp) override;
  grpc::ServerUnaryReactor* GetScalingStats(grpc::CallbackServerContext* ctx,
                                            const v1::GetScalingStatsRequest* req,
                                            v1::GetScalingStatsResponse* resp) override;
  grpc::ServerUnaryReactor* GetScalingEvents(grpc::CallbackServerContext* ctx,
                                             const v1::GetScalingEventsRequest* req,
                                             v1::GetScalingEventsResponse* resp) override;
  grpc::ServerUnaryReactor* SetScalingPolicy(grpc::CallbackServerContext* ctx,
                                             const v1::SetScalingPolicyRequest* req,
                                             v1::SetScalingPolicyResponse* resp) override;
  grpc::ServerUnaryReactor* GetScalingPolicy(grpc::CallbackServerContext* ctx,
                                             const v1::GetScalingPolicyRequest* req,
                                             v1::GetScalingPolicyResponse* resp) override;

 private:
  DynamicScaler* const scaler_;
  MethodMetrics* const m_collect_;
  MethodMetrics* const m_stats_;
  MethodMetrics* const m_events_;
  MethodMetrics* const m_set_policy_;
  MethodMetrics* const m_get_policy_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_SCALING_SERVICE_H_
