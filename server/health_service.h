// HealthService: grpc.health.v1.Health (Check and Watch) for "" (the whole
// server), "inferd" and the full name of every service the daemon serves
// ("inference.GRPCInferenceService", "inferd.v1.Memory", ...). All report
// NOT_SERVING until the daemon has its devices and models up, and again
// from the start of shutdown. Watch streams are bounded in number.
// Compiled from Debian's grpc-proto so reflection describes it.
#ifndef INFERD_SERVER_HEALTH_SERVICE_H_
#define INFERD_SERVER_HEALTH_SERVICE_H_

#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/grpc_metrics.h"

namespace inferd {

class HealthWatchReactor;

// Thread-safe.
class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  // `services`: the served service names answered besides "" and "inferd".
  // At most `max_watches` Watch streams at a time (RESOURCE_EXHAUSTED beyond).
  HealthService(GrpcMetrics* metrics, std::vector<std::string> services, int max_watches);
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
  bool Known(const std::string& service) const { return known_.contains(service); }
  ServingStatus StatusFor(const std::string& service) const;
  void Unregister(HealthWatchReactor* r);

  const absl::flat_hash_set<std::string> known_;
  const int max_watches_;
  MethodMetrics* const check_metrics_;
  MethodMetrics* const watch_metrics_;
  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::set<HealthWatchReactor*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_SERVER_HEALTH_SERVICE_H_
