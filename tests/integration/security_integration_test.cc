// TLS, mutual TLS, bearer tokens and their roles, certificate reload under
// load, SIGHUP token reload, and the refusal of a non-loopback address with
// neither TLS nor authentication. Certificates are made here with openssl.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/triton_client.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kInferToken[] = "infer-token-0123456789abcdef";
constexpr char kAdminToken[] = "admin-token-0123456789abcdef";

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Polls `done` every 50 ms for up to 30 s.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 600; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

// Inputs of the builtin model "add".
std::vector<testing::InferInput> AddInputs() {
  return {{"INPUT0", {2}, "FP32", testing::Raw<float>({1, 2})},
          {"INPUT1", {2}, "FP32", testing::Raw<float>({3, 4})}};
}

// Two CAs, a server certificate from each (127.0.0.1 and localhost) and a
// client certificate from the first, in a fresh folder.
class Pki {
 public:
  Pki() {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("inferd_pki_", ::getpid(), "_", counter_++);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string script = absl::StrCat(
        "set -e; cd '", d, "'\n",
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext\n",
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n",
        "key() { openssl ecparam -name prime256v1 -genkey -noout -out \"$1\" 2>/dev/null; }\n",
        "for ca in ca1 ca2; do key $ca.key; openssl req -x509 -new -key $ca.key -out $ca.crt "
        "-days 2 -subj /CN=$ca; done\n",
        "leaf() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj /CN=$1; "
        "openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -out $1.crt "
        "-days 2 -extfile $3 2>/dev/null; }\n",
        "leaf server1 ca1 server.ext; leaf server2 ca2 server.ext; leaf client ca1 client.ext\n");
    testing::CommandResult r = testing::RunCommand({"/bin/sh", "-c", script}, absl::Seconds(60));
    ok_ = r.exit_code == 0;
    output_ = r.output;
  }
  ~Pki() { std::filesystem::remove_all(dir_); }
  bool ok() const { return ok_; }
  const std::string& output() const { return output_; }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string Pem(const std::string& name) const { return ReadFile(dir_ / name); }

 private:
  std::filesystem::path dir_;
  bool ok_ = false;
  std::string output_;
  static int counter_;
};
int Pki::counter_ = 0;

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const std::string& roots,
                                          const std::string& key = "",
                                          const std::string& cert = "") {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = roots;
  o.pem_private_key = key;
  o.pem_cert_chain = cert;
  grpc::ChannelArguments args;
  // A fresh connection per channel, so each channel makes its own handshake.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(o), args);
}

// GET /metrics over HTTPS with curl; the exit code and the body.
testing::CommandResult Curl(int port, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "30"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return testing::RunCommand(argv, absl::Seconds(60));
}

bool HaveCurl() { return testing::RunCommand({"curl", "--version"}, absl::Seconds(10)).exit_code == 0; }

std::shared_ptr<grpc::Channel> PlainChannel(const std::string& target) {
  return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
}

std::string TlsConfig(const Pki& pki, bool mutual, const std::string& extra = "") {
  return absl::StrCat("server:\n  tls:\n    cert_file: \"", pki.Path("server1.crt"),
                      "\"\n    key_file: \"", pki.Path("server1.key"), "\"\n",
                      mutual ? absl::StrCat("    client_ca_file: \"", pki.Path("ca1.crt"), "\"\n")
                             : "",
                      "    reload_interval_seconds: 1\n", extra);
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!pki_.ok()) GTEST_SKIP() << "openssl could not make test certificates: " << pki_.output();
  }
  Pki pki_;
};

TEST_F(SecurityTest, ServerOnlyTlsServesTlsClientsAndRefusesPlainText) {
  testing::ConfiguredDaemon daemon(TlsConfig(pki_, /*mutual=*/false), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  EXPECT_THAT(daemon.process().Stderr(), HasSubstr(", TLS"));
  testing::TritonClient tls(TlsChannel(daemon.process().target(), pki_.Pem("ca1.crt")));
  auto r = tls.Infer("add", AddInputs());
  EXPECT_TRUE(r.ok()) << r.status();
  testing::TritonClient plain(PlainChannel(daemon.process().target()));
  EXPECT_FALSE(plain.GetServerMetadata().ok());
  // A client trusting another CA does not accept the server.
  testing::TritonClient wrong_ca(TlsChannel(daemon.process().target(), pki_.Pem("ca2.crt")));
  EXPECT_FALSE(wrong_ca.GetServerMetadata().ok());
  // The metrics port speaks HTTPS with the same certificate.
  const int mport = daemon.process().metrics_port();
  if (HaveCurl()) {
    auto https = Curl(mport, {"--cacert", pki_.Path("ca1.crt"),
                              absl::StrCat("https://127.0.0.1:", mport, "/metrics")});
    EXPECT_EQ(https.exit_code, 0) << https.output;
    EXPECT_THAT(https.output, HasSubstr("inferd_grpc_requests_total"));
    auto missing = Curl(mport, {"--cacert", pki_.Path("ca1.crt"), "-o", "/dev/null", "-w",
                                "%{http_code}",
                                absl::StrCat("https://127.0.0.1:", mport, "/other")});
    EXPECT_EQ(missing.output, "404");
  }
  EXPECT_THAT(testing::HttpGet(mport, "/metrics"), Not(HasSubstr("inferd_")));
  EXPECT_EQ(daemon.Stop(), 0);
}

TEST_F(SecurityTest, MutualTlsNeedsAClientCertificate) {
  testing::ConfiguredDaemon daemon(TlsConfig(pki_, /*mutual=*/true), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  EXPECT_THAT(daemon.process().Stderr(), HasSubstr("mutual TLS"));
  // The probe command speaks TLS with a client certificate; health needs no token.
  auto probe = testing::RunCommand(
      {testing::InferdBinary(), "healthcheck", "--grpc-target=" + daemon.process().target(),
       "--tls-ca=" + pki_.Path("ca1.crt"), "--tls-cert=" + pki_.Path("client.crt"),
       "--tls-key=" + pki_.Path("client.key"), "--tls-server-name=localhost", "--timeout=30"},
      absl::Seconds(60));
  EXPECT_EQ(probe.exit_code, 0) << probe.output;
  auto no_cert = testing::RunCommand(
      {testing::InferdBinary(), "healthcheck", "--grpc-target=" + daemon.process().target(),
       "--tls-ca=" + pki_.Path("ca1.crt"), "--timeout=30"},
      absl::Seconds(60));
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert.output;
  auto unchecked = testing::RunCommand(
      {testing::InferdBinary(), "healthcheck", "--grpc-target=" + daemon.process().target(),
       "--tls", "--tls-cert=" + pki_.Path("client.crt"), "--tls-key=" + pki_.Path("client.key"),
       "--timeout=30"},
      absl::Seconds(60));
  EXPECT_EQ(unchecked.exit_code, 0) << unchecked.output;
  testing::TritonClient anonymous(TlsChannel(daemon.process().target(), pki_.Pem("ca1.crt")));
  EXPECT_FALSE(anonymous.GetServerMetadata().ok());
  testing::TritonClient with_cert(TlsChannel(daemon.process().target(), pki_.Pem("ca1.crt"),
                                             pki_.Pem("client.key"), pki_.Pem("client.crt")));
  auto r = with_cert.Infer("add", AddInputs());
  EXPECT_TRUE(r.ok()) << r.status();
  const int mport = daemon.process().metrics_port();
  if (HaveCurl()) {
    const std::string url = absl::StrCat("https://127.0.0.1:", mport, "/metrics");
    EXPECT_NE(Curl(mport, {"--cacert", pki_.Path("ca1.crt"), url}).exit_code, 0);
    auto with = Curl(mport, {"--cacert", pki_.Path("ca1.crt"), "--cert", pki_.Path("client.crt"),
                             "--key", pki_.Path("client.key"), url});
    EXPECT_EQ(with.exit_code, 0) << with.output;
    EXPECT_THAT(with.output, HasSubstr("inferd_"));
  }
  EXPECT_EQ(daemon.Stop(), 0);
}

std::string TokensFile(const std::string& extra = "") {
  return testing::WriteTempFile(absl::StrCat("# name role token\nbatch infer ", kInferToken,
                                             "\nops admin ", kAdminToken, "\n", extra),
                                ".tokens");
}

TEST_F(SecurityTest, TokensAndRoles) {
  const std::string tokens = TokensFile();
  testing::ConfiguredDaemon daemon(
      absl::StrCat("server:\n  auth:\n    tokens_file: \"", tokens, "\"\n"), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  const std::string target = daemon.process().target();

  testing::TritonClient none(PlainChannel(target));
  auto st = none.Infer("add", AddInputs()).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("/inference.GRPCInferenceService/ModelInfer needs a bearer token with "
                        "role infer"));
  // Health and liveness stay open.
  EXPECT_TRUE(testing::RunCommand({testing::InferdBinary(), "healthcheck",
                                   "--grpc-target=" + target},
                                  absl::Seconds(30)).exit_code == 0);

  const std::string wrong_token = "wrong-token-0123456789abcdef";
  testing::TritonClient wrong(PlainChannel(target), wrong_token);
  st = wrong.GetServerMetadata().status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(st.message()), HasSubstr("not in server.auth.tokens_file"));
  EXPECT_THAT(std::string(st.message()), Not(HasSubstr(wrong_token)));

  testing::TritonClient infer(PlainChannel(target), kInferToken);
  auto r = infer.Infer("add", AddInputs());
  EXPECT_TRUE(r.ok()) << r.status();
  st = infer.LoadModel("add");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(),
            "/inference.GRPCInferenceService/RepositoryModelLoad needs role admin; caller "
            "'batch' has role infer");
  EXPECT_THAT(std::string(st.message()), Not(HasSubstr(kInferToken)));

  testing::TritonClient admin(PlainChannel(target), kAdminToken);
  st = admin.LoadModel("no_such_model");
  EXPECT_NE(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_NE(st.code(), absl::StatusCode::kUnauthenticated) << st;
  EXPECT_THAT(daemon.process().Stderr(), Not(HasSubstr(kInferToken)));
  EXPECT_THAT(daemon.process().Stderr(), Not(HasSubstr(kAdminToken)));

  // SIGHUP re-reads the file: a token added later is accepted.
  const std::string later = "later-token-0123456789abcdef";
  std::ofstream(tokens, std::ios::app) << "late infer " << later << "\n";
  daemon.process().Signal(SIGHUP);
  testing::TritonClient late(PlainChannel(target), later);
  EXPECT_TRUE(Eventually([&] { return late.GetServerMetadata().ok(); }));
  EXPECT_EQ(daemon.Stop(), 0);
  std::filesystem::remove(tokens);
}

// The status of a reflection listing sent without a token: OK when
// reflection answers.
grpc::StatusCode ReflectionListing(const std::string& target) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(PlainChannel(target));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("*");
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  const bool answered = stream->Write(req) && stream->Read(&resp);
  stream->WritesDone();
  if (answered) {
    while (stream->Read(&resp)) {
    }
  }
  grpc::Status st = stream->Finish();
  if (answered && resp.list_services_response().service_size() > 0) return grpc::StatusCode::OK;
  return st.ok() ? grpc::StatusCode::UNKNOWN : st.error_code();
}

// Health and reflection stay open with tokens; server.reflection: off
// closes reflection.
TEST_F(SecurityTest, ReflectionStaysOpenWithTokensAndCloses) {
  const std::string tokens = TokensFile();
  const std::string auth = absl::StrCat("  auth:\n    tokens_file: \"", tokens, "\"\n");
  {
    testing::ConfiguredDaemon daemon(absl::StrCat("server:\n", auth), 1);
    ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
    EXPECT_EQ(ReflectionListing(daemon.process().target()), grpc::StatusCode::OK);
    EXPECT_EQ(daemon.Stop(), 0);
  }
  testing::ConfiguredDaemon daemon(absl::StrCat("server:\n  reflection: \"off\"\n", auth), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  EXPECT_EQ(ReflectionListing(daemon.process().target()), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(testing::RunCommand({testing::InferdBinary(), "healthcheck",
                                 "--grpc-target=" + daemon.process().target()},
                                absl::Seconds(30)).exit_code, 0);
  EXPECT_EQ(daemon.Stop(), 0);
  std::filesystem::remove(tokens);
}

// With tokens, a tensor records its caller as owner; freeing another
// caller's tensor, or allocating for another owner, needs role admin.
TEST_F(SecurityTest, FreeingAnotherCallersTensorNeedsAdmin) {
  const std::string other_token = "other-token-0123456789abcdef";
  const std::string tokens = TokensFile(absl::StrCat("other infer ", other_token, "\n"));
  testing::ConfiguredDaemon daemon(
      absl::StrCat("server:\n  auth:\n    tokens_file: \"", tokens, "\"\n"), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  auto ctl = [&](const std::string& token, std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::InferctlBinary(),
                                     "--target=" + daemon.process().target(), "--token=" + token};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, absl::Seconds(60));
  };
  auto upload = [&](const std::string& token) {
    testing::CommandResult up = ctl(token, {"tensors", "upload", "FP32:4:1,2,3,4"});
    EXPECT_EQ(up.exit_code, 0) << up.output;
    EXPECT_THAT(up.output, HasSubstr("owner batch"));  // the caller's name, not sent
    return up.output.substr(0, up.output.find(' '));
  };
  const std::string id = upload(kInferToken);
  ASSERT_FALSE(id.empty());

  testing::CommandResult r = ctl(other_token, {"tensors", "free", id});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("FreeTensor of tensor ", id,
                                               " owned by 'batch' needs role admin; caller "
                                               "'other' has role infer")));
  EXPECT_THAT(r.output, Not(HasSubstr(other_token)));
  r = ctl(other_token, {"tensors", "alloc", "FP32:4", "--owner=batch"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("only role admin may act for another owner"));

  // The owner frees its own; admin frees anyone's.
  const std::string own = upload(kInferToken);
  r = ctl(kInferToken, {"tensors", "free", own});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = ctl(kAdminToken, {"tensors", "free", id});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = ctl(kAdminToken, {"tensors", "alloc", "FP32:4", "--owner=batch"});
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // A task belongs to its caller too, and so do the outputs it keeps.
  r = ctl(kInferToken, {"tasks", "submit", "identity", "--input=INPUT0:FP32:2:1,2",
                        "--keep-outputs", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const size_t at = r.output.find(": tensor ");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string kept = r.output.substr(at + 9, r.output.find(' ', at + 9) - (at + 9));
  r = ctl(other_token, {"tensors", "free", kept});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("owned by 'batch' needs role admin"));
  r = ctl(other_token, {"tasks", "submit", "identity", "--input=INPUT0:FP32:2:1,2",
                        "--owner=batch"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("SubmitTask: task.owner names owner 'batch'"));
  r = ctl(kInferToken, {"tensors", "free", kept});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(daemon.Stop(), 0);
  std::filesystem::remove(tokens);
}

// The certificate changes while clients run: no request fails, the open
// connection keeps going, and new connections get the new certificate.
TEST_F(SecurityTest, CertificateReloadUnderLoadFailsNoRequest) {
  std::filesystem::path dir = std::filesystem::path(pki_.Path("served"));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(pki_.Path("server1.crt"), dir / "tls.crt");
  std::filesystem::copy_file(pki_.Path("server1.key"), dir / "tls.key");
  testing::ConfiguredDaemon daemon(
      absl::StrCat("server:\n  tls:\n    cert_file: \"", (dir / "tls.crt").string(),
                   "\"\n    key_file: \"", (dir / "tls.key").string(),
                   "\"\n    reload_interval_seconds: 1\n"),
      1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  const std::string target = daemon.process().target();
  const std::string both_cas = pki_.Pem("ca1.crt") + pki_.Pem("ca2.crt");

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  absl::Mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      // Threads 0-1 keep one connection; 2-3 open a new one per request.
      auto channel = TlsChannel(target, both_cas);
      while (!stop.load()) {
        if (t >= 2) channel = TlsChannel(target, both_cas);
        testing::TritonClient c(channel);
        auto r = c.Infer("add", AddInputs());
        if (r.ok()) {
          ok.fetch_add(1);
        } else {
          absl::MutexLock lock(&mu);
          failures.push_back(r.status().ToString());
        }
      }
    });
  }
  auto join = [&] {
    stop = true;
    for (auto& t : load) t.join();
  };
  if (!Eventually([&] { return ok.load() > 20; })) {
    join();
    FAIL() << "no load went through: " << (failures.empty() ? "" : failures.front());
  }
  // Swap in the second CA's certificate, key first, each by rename.
  std::filesystem::copy_file(pki_.Path("server2.key"), dir / "tls.key.new");
  std::filesystem::copy_file(pki_.Path("server2.crt"), dir / "tls.crt.new");
  std::filesystem::rename(dir / "tls.key.new", dir / "tls.key");
  std::filesystem::rename(dir / "tls.crt.new", dir / "tls.crt");
  // A client that trusts only the second CA gets in once the file is re-read.
  EXPECT_TRUE(Eventually([&] {
    testing::TritonClient c(TlsChannel(target, pki_.Pem("ca2.crt")));
    return c.GetServerMetadata().ok();
  }));
  const int before = ok.load();
  EXPECT_TRUE(Eventually([&] { return ok.load() > before + 20; }));
  join();
  absl::MutexLock lock(&mu);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_EQ(daemon.Stop(), 0);
}

TEST(ListenSecurityTest, RefusesNonLoopbackWithNeitherTlsNorAuth) {
  testing::DaemonProcess daemon(
      {"--host-devices=1", "--grpc-listen=0.0.0.0:0", "--metrics-listen=127.0.0.1:0"},
      /*add_listen_flags=*/false);
  EXPECT_FALSE(daemon.started());
  EXPECT_EQ(daemon.Wait(absl::Seconds(30)), 2);
  EXPECT_THAT(daemon.Stderr(),
              HasSubstr("server.grpc_listen: \"0.0.0.0:0\" is beyond loopback with neither "
                        "server.tls nor server.auth"));
}

TEST(ListenSecurityTest, ExplicitKeyAllowsItWithAWarning) {
  const std::string config = testing::WriteTempFile(
      "server:\n  grpc_listen: \"0.0.0.0:0\"\n  metrics_listen: \"127.0.0.1:0\"\n"
      "  allow_insecure_non_loopback: true\n");
  testing::DaemonProcess daemon({"--host-devices=1", "--config=" + config},
                                /*add_listen_flags=*/false);
  ASSERT_TRUE(daemon.started()) << daemon.Stderr();
  EXPECT_THAT(daemon.Stderr(), HasSubstr("W "));
  EXPECT_THAT(daemon.Stderr(), HasSubstr("is beyond loopback with neither TLS nor authentication"));
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(absl::Seconds(30)), 0);
  std::filesystem::remove(config);
}

}  // namespace
}  // namespace inferd
