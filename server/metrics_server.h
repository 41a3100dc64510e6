// MetricsServer: the metrics endpoint (server.metrics_listen), plain HTTP,
// or HTTPS on OpenSSL directly when the options carry TLS files
// (server.tls). It answers `GET /metrics` with the Prometheus text format of
// its collectables; every other request gets 404.
//
// Limits: `threads` connections are served at once (more wait in a short
// queue, beyond it they are closed), each connection has `request_timeout`
// from accept to the last byte of the reply (TLS handshake, request and
// reply together), a request is at most 8 KiB, and the connection closes
// after one reply. Stopping wakes every thread at once (an eventfd), so the
// destructor returns as soon as open replies are cut. With TLS the
// certificate files are re-read when they change (checked at most every
// reload interval) or on Reload().
#ifndef INFERD_SERVER_METRICS_SERVER_H_
#define INFERD_SERVER_METRICS_SERVER_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/config/config.h"
#include "prometheus/collectable.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace inferd {

struct MetricsServerOptions {
  std::string listen;  // host:port
  TlsConfig tls;       // HTTPS when tls.enabled(), else plain HTTP
  int threads = 4;
  absl::Duration request_timeout = absl::Seconds(10);
};

class MetricsServer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      MetricsServerOptions options, std::vector<std::shared_ptr<prometheus::Collectable>> sources);
  ~MetricsServer();  // stops accepting, ends open connections, joins

  int port() const { return port_; }
  // Re-reads the certificate files; on error keeps the ones loaded before.
  // Without TLS there is nothing to re-read.
  absl::Status Reload();

 private:
  explicit MetricsServer(MetricsServerOptions options);
  void AcceptLoop();
  void WorkerLoop();
  void Serve(int fd);
  std::shared_ptr<SSL_CTX> Context();  // reloads first when the files changed; null: plain
  std::string Scrape() const;

  const MetricsServerOptions options_;
  std::vector<std::shared_ptr<prometheus::Collectable>> sources_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: readable once stopping
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;

  absl::Mutex mu_;
  std::deque<int> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex ctx_mu_;
  std::shared_ptr<SSL_CTX> ctx_ ABSL_GUARDED_BY(ctx_mu_);
  std::string files_stamp_ ABSL_GUARDED_BY(ctx_mu_);  // sizes and mtimes loaded
  absl::Time last_check_ ABSL_GUARDED_BY(ctx_mu_);
};

}  // namespace inferd

#endif  // INFERD_SERVER_METRICS_SERVER_H_
