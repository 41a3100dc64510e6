#include "server/health_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/echo.h"
#include "server/server_call.h"

namespace inferd {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch stream: writes the current status, then every change. Thread-safe.
class HealthWatchReactor final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  HealthWatchReactor(HealthService* service, std::string name, MethodMetrics* metrics)
      : service_(service), name_(std::move(name)), call_(metrics) {}

  // Sends `status` now, or after the write in flight. `finish` ends the stream.
  void Push(HealthCheckResponse::ServingStatus status, bool finish) {
    absl::MutexLock lock(&mu_);
    pending_ = status;
    finish_ |= finish;
    MaybeWriteLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(absl::CancelledError("client went away"));
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("watch cancelled by the client"));
  }

  void OnDone() override {
    service_->Unregister(this);
    delete this;
  }

  // Ends the stream at once with `status` (never registered).
  void Refuse(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || call_.finished()) return;
    if (pending_ != sent_) {
      sent_ = pending_;
      response_.set_status(sent_);
      writing_ = true;
      StartWrite(&response_);
      return;
    }
    if (finish_) FinishLocked(absl::OkStatus());
  }
  void FinishLocked(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call_.Finish(this, s);
  }

  HealthService* const service_;
  const std::string name_;
  ServerCall call_;
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  HealthCheckResponse::ServingStatus pending_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  HealthCheckResponse::ServingStatus sent_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_ ABSL_GUARDED_BY(mu_) = false;

 public:
  const std::string& name() const { return name_; }
};

namespace {

absl::flat_hash_set<std::string> KnownNames(std::vector<std::string> services) {
  absl::flat_hash_set<std::string> known(std::make_move_iterator(services.begin()),
                                         std::make_move_iterator(services.end()));
  known.insert("");
  known.insert("inferd");
  known.insert(grpc::health::v1::Health::service_full_name());
  return known;
}

}  // namespace

HealthService::HealthService(GrpcMetrics* metrics, std::vector<std::string> services,
                             int max_watches)
    : known_(KnownNames(std::move(services))),
      max_watches_(max_watches),
      check_metrics_(metrics->ForMethod("grpc.health.v1.Health/Check")),
      watch_metrics_(metrics->ForMethod("grpc.health.v1.Health/Watch")) {}

HealthService::~HealthService() = default;

HealthService::ServingStatus HealthService::StatusFor(const std::string& service) const {
  if (!Known(service)) return HealthCheckResponse::SERVICE_UNKNOWN;
  absl::MutexLock lock(&mu_);
  return serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

void HealthService::SetServing(bool serving) {
  std::vector<HealthWatchReactor*> watchers;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    serving_ = serving;
    watchers.assign(watchers_.begin(), watchers_.end());
    // Push under mu_ so a reactor cannot finish (and delete) meanwhile.
    for (auto* w : watchers) {
      w->Push(Known(w->name()) ? (serving ? HealthCheckResponse::SERVING
                                          : HealthCheckResponse::NOT_SERVING)
                               : HealthCheckResponse::SERVICE_UNKNOWN,
              false);
    }
  }
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  serving_ = false;
  shut_down_ = true;
  for (auto* w : watchers_) {
    w->Push(Known(w->name()) ? HealthCheckResponse::NOT_SERVING
                             : HealthCheckResponse::SERVICE_UNKNOWN,
            true);
  }
}

void HealthService::Unregister(HealthWatchReactor* r) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(r);
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  UnaryCall call(context, check_metrics_);
  if (!Known(request->service())) {
    return call.Finish(absl::NotFoundError(
        absl::StrCat("service: unknown service ", Echo(request->service()),
                     " (known: \"\", \"inferd\" and each served service's full name)")));
  }
  response->set_status(StatusFor(request->service()));
  return call.Finish(absl::OkStatus());
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* context, const HealthCheckRequest* request) {
  auto* reactor = new HealthWatchReactor(this, request->service(), watch_metrics_);
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(watchers_.size()) >= max_watches_) {
    reactor->Refuse(absl::ResourceExhaustedError(absl::StrCat(
        "limits.max_watch_streams: ", max_watches_, " health Watch streams are open")));
    return reactor;
  }
  watchers_.insert(reactor);
  const bool known = Known(request->service());
  reactor->Push(!known      ? HealthCheckResponse::SERVICE_UNKNOWN
                : serving_ ? HealthCheckResponse::SERVING
                           : HealthCheckResponse::NOT_SERVING,
                shut_down_);
  return reactor;
}

}  // namespace inferd
