#include "server/healthcheck.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace inferd {

int RunHealthcheck(int argc, const char* const* argv) {
  std::string target = "127.0.0.1:50051";
  std::string service = "inferd";
  double timeout_s = 2.0;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  bool tls = false;
  for (int i = 2; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--grpc-target=")) {
      target = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--service=")) {
      service = std::string(a);
    } else if (a == "--tls") {
      tls = true;
    } else if (absl::ConsumePrefix(&a, "--tls-ca=")) {
      tls_ca = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--tls-cert=")) {
      tls_cert = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--tls-key=")) {
      tls_key = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--tls-server-name=")) {
      tls_server_name = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--timeout=")) {
      if (!absl::SimpleAtod(a, &timeout_s) || timeout_s <= 0) {
        std::fprintf(stderr, "healthcheck: --timeout must be a positive number of seconds\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "healthcheck: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (tls || !tls_ca.empty()) {
    grpc::SslCredentialsOptions o;
    for (auto [path, out] : {std::pair{&tls_ca, &o.pem_root_certs},
                             std::pair{&tls_cert, &o.pem_cert_chain},
                             std::pair{&tls_key, &o.pem_private_key}}) {
      if (path->empty()) continue;
      std::ifstream in(*path);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        std::fprintf(stderr, "healthcheck: cannot read '%s'\n", path->c_str());
        return 2;
      }
      *out = text.str();
    }
    if (!tls_ca.empty()) {
      creds = grpc::SslCredentials(o);
      if (!tls_server_name.empty()) args.SetSslTargetNameOverride(tls_server_name);
    } else {
      // --tls alone: encrypted, the server's certificate not checked (a
      // probe beside the daemon asks only whether it serves).
      grpc::experimental::TlsChannelCredentialsOptions t;
      t.set_verify_server_certs(false);
      t.set_check_call_host(false);
      t.set_certificate_verifier(
          std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
      if (!o.pem_cert_chain.empty()) {
        t.set_certificate_provider(
            std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
                std::vector<grpc::experimental::IdentityKeyCertPair>{
                    {o.pem_private_key, o.pem_cert_chain}}));
        t.watch_identity_key_cert_pairs();
      }
      creds = grpc::experimental::TlsCredentials(t);
    }
  }
  auto channel = grpc::CreateCustomChannel(target, creds, args);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) {
    std::fprintf(stderr, "healthcheck: %s: %s\n", target.c_str(), st.error_message().c_str());
    return 1;
  }
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()).c_str());
  return serving ? 0 : 1;
}

}  // namespace inferd
