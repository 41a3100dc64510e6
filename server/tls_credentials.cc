#include "server/tls_credentials.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace inferd {
namespace {

struct BioCloser {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioCloser>;

absl::Status Bad(const char* key, const std::string& path, const char* why) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": '", path, "' ", why));
}

}  // namespace

absl::Status CheckTlsFiles(const TlsConfig& tls) {
  if (!tls.enabled()) return absl::OkStatus();
  BioPtr cert_bio(BIO_new_file(tls.cert_file.c_str(), "r"));
  if (cert_bio == nullptr) return Bad("server.tls.cert_file", tls.cert_file, "cannot be read");
  X509* cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
  if (cert == nullptr) {
    return Bad("server.tls.cert_file", tls.cert_file, "holds no PEM certificate");
  }
  BioPtr key_bio(BIO_new_file(tls.key_file.c_str(), "r"));
  if (key_bio == nullptr) {
    X509_free(cert);
    return Bad("server.tls.key_file", tls.key_file, "cannot be read");
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  absl::Status st;
  if (key == nullptr) {
    st = Bad("server.tls.key_file", tls.key_file, "holds no PEM private key");
  } else if (X509_check_private_key(cert, key) != 1) {
    st = Bad("server.tls.key_file", tls.key_file,
             "does not match the certificate of server.tls.cert_file");
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  if (!st.ok() || tls.client_ca_file.empty()) return st;
  BioPtr ca_bio(BIO_new_file(tls.client_ca_file.c_str(), "r"));
  if (ca_bio == nullptr) {
    return Bad("server.tls.client_ca_file", tls.client_ca_file, "cannot be read");
  }
  X509* ca = PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr);
  if (ca == nullptr) {
    return Bad("server.tls.client_ca_file", tls.client_ca_file, "holds no PEM certificate");
  }
  X509_free(ca);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& listen, const TlsConfig& tls, const TokenTable* tokens) {
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (tls.enabled()) {
    if (absl::Status st = CheckTlsFiles(tls); !st.ok()) return st;
    // The watcher re-reads the files every reload_interval_seconds; a new
    // certificate serves new handshakes, open connections keep theirs.
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls.key_file, tls.cert_file, tls.client_ca_file,
        static_cast<unsigned int>(tls.reload_interval_seconds));
    grpc::experimental::TlsServerCredentialsOptions options(provider);
    options.watch_identity_key_cert_pairs();
    if (!tls.client_ca_file.empty()) {
      options.watch_root_certs();
      options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    } else {
      options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    }
    creds = grpc::experimental::TlsServerCredentials(options);
  } else if (tokens != nullptr) {
    // gRPC runs token checks only on secure credentials; local ones are
    // plain text that accept loopback peers alone (ValidateConfig keeps
    // server.auth without server.tls to loopback addresses).
    creds = grpc::experimental::LocalServerCredentials(
        absl::StartsWith(listen, "unix:") ? UDS : LOCAL_TCP);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  if (creds == nullptr) return absl::InternalError("server.tls: gRPC refused the credentials");
  if (tokens != nullptr) {
    creds->SetAuthMetadataProcessor(std::make_shared<TokenAuthProcessor>(tokens));
  }
  return creds;
}

}  // namespace inferd
