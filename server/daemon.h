// Daemon: the composition root. Builds devices, engines, models, metrics and
// the gRPC server from a validated Config and wires them together. It holds
// no policy of its own; each piece lives in its engine or adapter.
#ifndef INFERD_SERVER_DAEMON_H_
#define INFERD_SERVER_DAEMON_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/config/config.h"

namespace inferd {

// Start/Shutdown from one thread; the rest is internally thread-safe.
class Daemon {
 public:
  // Builds everything and starts serving; health goes SERVING once devices
  // and models are up. Errors name the config key or the address.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const Config& config);
  ~Daemon();

  // The gRPC port actually bound (useful with port 0).
  int grpc_port() const;
  // The metrics port actually bound, or 0 when disabled.
  int metrics_port() const;

  // Health NOT_SERVING, stop accepting, drain in-flight calls for up to
  // `grace`, then cancel what remains. Idempotent.
  void Shutdown(absl::Duration grace);

  // SIGHUP: re-reads server.auth.tokens_file and the metrics port's TLS
  // files (the gRPC port re-reads its own when they change). A file that
  // fails keeps what was loaded before; the error is logged.
  void Reload();

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_DAEMON_H_
