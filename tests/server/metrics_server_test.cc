// MetricsServer over plain HTTP, in process: what it serves, how it cuts off
// slow clients, and that stopping does not wait on an open connection.
#include "server/metrics_server.h"

#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace inferd {
namespace {

// A connected TCP socket to 127.0.0.1:port (closed on destruction).
class Conn {
 public:
  explicit Conn(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~Conn() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& s) {
    ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // Everything the server sends until it closes.
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// One request on a connection of its own: everything the server answers.
std::string Exchange(int port, const std::string& request) {
  Conn c(port);
  EXPECT_TRUE(c.connected());
  c.Send(request);
  return c.ReadAll();
}

class MetricsServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<MetricsServer> Start(int threads, absl::Duration timeout) {
    auto registry = std::make_shared<prometheus::Registry>();
    prometheus::BuildCounter()
        .Name("inferd_probe_total")
        .Help("a probe")
        .Register(*registry)
        .Add({})
        .Increment(3);
    MetricsServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = threads;
    o.request_timeout = timeout;
    auto s = MetricsServer::Start(std::move(o), {registry});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
};

TEST_F(MetricsServerTest, ServesTheCollectablesOnMetricsAndNotFoundElsewhere) {
  auto server = Start(2, absl::Seconds(10));
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);
  const std::string reply = Exchange(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "text/plain; version=0.0.4")) << reply;
  EXPECT_TRUE(absl::StrContains(reply, "inferd_probe_total 3")) << reply;

  const std::string missing = Exchange(server->port(), "GET /other HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(missing, "HTTP/1.1 404 Not Found\r\n")) << missing;
  EXPECT_FALSE(absl::StrContains(missing, "inferd_probe_total")) << missing;
  EXPECT_TRUE(server->Reload().ok());  // nothing to re-read without TLS
}

TEST_F(MetricsServerTest, AClientThatNeverFinishesItsRequestIsCutOffAtTheTimeout) {
  auto server = Start(1, absl::Milliseconds(200));
  ASSERT_NE(server, nullptr);
  Conn slow(server->port());
  ASSERT_TRUE(slow.connected());
  slow.Send("GET /metr");
  // The server closes without a reply; without the timeout this read
  // would wait forever (and the test time out).
  EXPECT_EQ(slow.ReadAll(), "");
  // The worker is free again.
  EXPECT_TRUE(absl::StrContains(Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
                                "inferd_probe_total 3"));
}

TEST_F(MetricsServerTest, OversizedAndGarbageRequestsAreClosedAndServingGoesOn) {
  auto server = Start(1, absl::Seconds(10));
  ASSERT_NE(server, nullptr);
  // Past 8 KiB with no end of headers.
  EXPECT_EQ(Exchange(server->port(), std::string(9 << 10, 'A')), "");
  std::string garbage;
  for (int i = 0; i < 512; ++i) garbage.push_back(static_cast<char>(i * 37));
  EXPECT_TRUE(absl::StartsWith(Exchange(server->port(), garbage + "\r\n\r\n"),
                               "HTTP/1.1 404 Not Found\r\n"));
  EXPECT_TRUE(absl::StrContains(Exchange(server->port(), "GET /metrics?x=1 HTTP/1.1\r\n\r\n"),
                                "inferd_probe_total 3"));
}

TEST_F(MetricsServerTest, StoppingDoesNotWaitForAnOpenConnection) {
  auto server = Start(2, absl::Seconds(300));
  ASSERT_NE(server, nullptr);
  Conn idle(server->port());
  ASSERT_TRUE(idle.connected());
  idle.Send("GET /metr");
  // A full scrape on another connection: the server is serving.
  ASSERT_TRUE(absl::StrContains(Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
                                "inferd_probe_total 3"));
  // With the open connection's 300 s left, stopping must still return now
  // (a wait for it would exceed the test's time limit).
  server.reset();
  EXPECT_EQ(idle.ReadAll(), "");
}

}  // namespace
}  // namespace inferd
