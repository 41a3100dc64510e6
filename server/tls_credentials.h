// gRPC server credentials from server.tls and server.auth: TLS (mutual when
// client_ca_file is set) whose files are re-read when they change, and the
// bearer-token check on every call.
#ifndef INFERD_SERVER_TLS_CREDENTIALS_H_
#define INFERD_SERVER_TLS_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/config.h"
#include "grpcpp/security/server_credentials.h"
#include "server/token_auth.h"

namespace inferd {

// INVALID_ARGUMENT naming the key when a file cannot be read or is not PEM
// of the right kind, or the key does not match the certificate.
absl::Status CheckTlsFiles(const TlsConfig& tls);

// For a server bound to `listen`. `tokens` may be null (no
// authentication); it must outlive the server.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& listen, const TlsConfig& tls, const TokenTable* tokens);

}  // namespace inferd

#endif  // INFERD_SERVER_TLS_CREDENTIALS_H_
