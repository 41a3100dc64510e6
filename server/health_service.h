// HealthService: grpc.health.v1.Health (Check and Watch) for the services
// "" (the whole server) and "inferd". Both report NOT_SERVING until the
// daemon has its devices and models up, and again from the start of
// shutdown. Compiled from Debian's grpc-proto so reflection describes it.
#ifndef INFERD_SERVER_HEALTH_SERVICE_H_
#define INFERD_SERVER_HEALTH_SERVICE_H_

#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/grpc_metrics.h"

namespace inferd {

class HealthWatchReactor;

// Thread-safe.
class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  explicit HealthService(GrpcMetrics* metrics);
  ~HealthService() override;

  // Sets the status of every served name and tells watchers.
  void SetServing(bool serving);
  // NOT_SERVING, then ends every Watch stream so shutdown need not wait.
  void Shutdown();

  // grpc::health::v1::Health::CallbackService
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  friend class HealthWatchReactor;
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
  static bool Known(const std::string& service) { return service.empty() || service == "inferd"; }
  ServingStatus StatusFor(const std::string& service) const;
  void Unregister(HealthWatchReactor* r);

  MethodMetrics* const check_metrics_;
  MethodMetrics* const watch_metrics_;
  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::set<HealthWatchReactor*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_SERVER_HEALTH_SERVICE_H_
