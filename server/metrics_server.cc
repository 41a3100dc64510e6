#include "server/metrics_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/logging.h"
#include "prometheus/text_serializer.h"
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

namespace inferd {
namespace {

constexpr size_t kMaxRequestBytes = 8 << 10;
constexpr size_t kQueuePerThread = 4;  // accepted connections waiting per worker

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

// Sizes and mtimes of the TLS files: changes when a file is replaced.
std::string Stamp(const TlsConfig& tls) {
  std::string out;
  for (const std::string* f : {&tls.cert_file, &tls.key_file, &tls.client_ca_file}) {
    struct stat st {};
    if (f->empty() || ::stat(f->c_str(), &st) != 0) {
      out += "-;";
      continue;
    }
    absl::StrAppend(&out, st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ";");
  }
  return out;
}

absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeContext(const TlsConfig& tls) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError("metrics TLS: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.tls.cert_file: '", tls.cert_file, "': ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.tls.key_file: '", tls.key_file, "': ", OpenSslError()));
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), tls.client_ca_file.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("server.tls.client_ca_file: '", tls.client_ca_file, "': ", OpenSslError()));
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

// Waits until `fd` is ready for `events`, the deadline passes or stop_fd
// fires; true when ready.
bool WaitFd(int fd, short events, int stop_fd, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (fds[1].revents != 0) return false;
    return true;
  }
}

// Runs a plain socket operation (recv or send) until it moves bytes, the
// peer closes, it fails or runs out of time.
template <typename Op>
int PlainIo(int fd, short events, int stop_fd, absl::Time deadline, Op op) {
  while (true) {
    const ssize_t r = op();
    if (r > 0) return static_cast<int>(r);
    if (r == 0) return -1;  // the peer closed
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!WaitFd(fd, events, stop_fd, deadline)) return -1;
  }
}

// Runs an SSL operation until it completes, fails or runs out of time.
template <typename Op>
int SslIo(SSL* ssl, int fd, int stop_fd, absl::Time deadline, Op op) {
  while (true) {
    ERR_clear_error();
    int r = op();
    if (r > 0) return r;
    int e = SSL_get_error(ssl, r);
    short events = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (events == 0 || !WaitFd(fd, events, stop_fd, deadline)) return -1;
  }
}

}  // namespace

MetricsServer::MetricsServer(MetricsServerOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    MetricsServerOptions options, std::vector<std::shared_ptr<prometheus::Collectable>> sources) {
  std::unique_ptr<MetricsServer> s(new MetricsServer(std::move(options)));
  s->sources_ = std::move(sources);
  if (s->options_.tls.enabled()) {
    auto ctx = MakeContext(s->options_.tls);
    if (!ctx.ok()) return ctx.status();
    absl::MutexLock lock(&s->ctx_mu_);
    s->ctx_ = *std::move(ctx);
    s->files_stamp_ = Stamp(s->options_.tls);
    s->last_check_ = absl::Now();
  }
  const std::string& listen = s->options_.listen;
  const size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  auto fail = [&](const std::string& why) {
    return absl::UnavailableError(
        absl::StrCat("server.metrics_listen: cannot listen on ", listen, ": ", why));
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* addrs = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &addrs); rc != 0) {
    return fail(gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* a = addrs; a != nullptr && s->listen_fd_ < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
      s->listen_fd_ = fd;
    } else {
      last_error = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(addrs);
  if (s->listen_fd_ < 0) return fail(last_error);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->stop_fd_ < 0) return fail(std::strerror(errno));
  for (int i = 0; i < s->options_.threads; ++i) {
    s->workers_.emplace_back([p = s.get()] { p->WorkerLoop(); });
  }
  s->acceptor_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

MetricsServer::~MetricsServer() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof(one));
  }
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& w : workers_) w.join();
  {
    absl::MutexLock lock(&mu_);
    for (int fd : pending_) ::close(fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

absl::Status MetricsServer::Reload() {
  if (!options_.tls.enabled()) return absl::OkStatus();
  auto ctx = MakeContext(options_.tls);
  absl::MutexLock lock(&ctx_mu_);
  last_check_ = absl::Now();
  files_stamp_ = Stamp(options_.tls);
  if (!ctx.ok()) return ctx.status();
  ctx_ = *std::move(ctx);
  return absl::OkStatus();
}

std::shared_ptr<SSL_CTX> MetricsServer::Context() {
  if (!options_.tls.enabled()) return nullptr;
  bool reload = false;
  {
    absl::MutexLock lock(&ctx_mu_);
    const absl::Time now = absl::Now();
    if (now - last_check_ >= absl::Seconds(options_.tls.reload_interval_seconds)) {
      last_check_ = now;
      reload = Stamp(options_.tls) != files_stamp_;
    }
    if (!reload) return ctx_;
  }
  if (absl::Status st = Reload(); !st.ok()) {
    INFERD_LOG(kWarning, "metrics TLS reload: ", st.message(), "; keeping the old certificate");
  } else {
    INFERD_LOG(kInfo, "metrics TLS: certificate files reloaded");
  }
  absl::MutexLock lock(&ctx_mu_);
  return ctx_;
}

void MetricsServer::AcceptLoop() {
  const size_t max_pending = static_cast<size_t>(options_.threads) * kQueuePerThread;
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    absl::MutexLock lock(&mu_);
    if (pending_.size() >= max_pending) {
      ::close(fd);  // every worker busy and the queue full: shed
      continue;
    }
    pending_.push_back(fd);
  }
}

void MetricsServer::WorkerLoop() {
  while (true) {
    int fd = -1;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](MetricsServer* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
            return s->stopping_ || !s->pending_.empty();
          },
          this));
      if (stopping_) return;
      fd = pending_.front();
      pending_.pop_front();
    }
    Serve(fd);
    ::close(fd);
  }
}

std::string MetricsServer::Scrape() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& source : sources_) {
    auto more = source->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

void MetricsServer::Serve(int fd) {
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  std::shared_ptr<SSL_CTX> ctx = Context();
  std::unique_ptr<SSL, void (*)(SSL*)> ssl(nullptr, SSL_free);
  if (ctx != nullptr) {
    ssl.reset(SSL_new(ctx.get()));
    if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1) return;
    SSL* s = ssl.get();
    if (SslIo(s, fd, stop_fd_, deadline, [s] { return SSL_accept(s); }) <= 0) return;
  }
  // Each returns the bytes moved, or <= 0 once the connection is done for.
  auto read = [&](char* buf, int want) {
    SSL* s = ssl.get();
    return s != nullptr ? SslIo(s, fd, stop_fd_, deadline, [&] { return SSL_read(s, buf, want); })
                        : PlainIo(fd, POLLIN, stop_fd_, deadline,
                                  [&] { return ::recv(fd, buf, static_cast<size_t>(want), 0); });
  };
  auto write = [&](const char* data, int size) {
    SSL* s = ssl.get();
    return s != nullptr ? SslIo(s, fd, stop_fd_, deadline, [&] { return SSL_write(s, data, size); })
                        : PlainIo(fd, POLLOUT, stop_fd_, deadline, [&] {
                            return ::send(fd, data, static_cast<size_t>(size), MSG_NOSIGNAL);
                          });
  };
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() >= kMaxRequestBytes) return;
    const int n =
        read(buf, static_cast<int>(std::min(sizeof(buf), kMaxRequestBytes - request.size())));
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  const bool get_metrics =
      absl::StartsWith(request, "GET /metrics ") || absl::StartsWith(request, "GET /metrics?");
  std::string body = get_metrics ? Scrape() : std::string("not found\n");
  std::string reply =
      absl::StrCat("HTTP/1.1 ", get_metrics ? "200 OK" : "404 Not Found",
                   "\r\nContent-Type: ", get_metrics ? "text/plain; version=0.0.4" : "text/plain",
                   "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
  size_t sent = 0;
  while (sent < reply.size()) {
    const int n = write(reply.data() + sent,
                        static_cast<int>(std::min<size_t>(reply.size() - sent, 1 << 20)));
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
  if (SSL* s = ssl.get(); s != nullptr) {
    (void)SslIo(s, fd, stop_fd_, deadline, [s] { return SSL_shutdown(s) >= 0 ? 1 : 0; });
  } else {
    ::shutdown(fd, SHUT_WR);  // the reply is whole: the client reads EOF after it
  }
}

}  // namespace inferd
