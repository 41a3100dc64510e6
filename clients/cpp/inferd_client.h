// InferdClient: a small C++ client over the generated stubs — one channel
// with explicit message limits, per-call deadlines, and retries with
// backoff when the daemon is UNAVAILABLE (starting, restarting). Used by
// inferctl and the tests.
#ifndef INFERD_CLIENTS_CPP_INFERD_CLIENT_H_
#define INFERD_CLIENTS_CPP_INFERD_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"

namespace inferd {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";
  absl::Duration timeout = absl::Seconds(30);  // per call
  int max_message_bytes = 64 << 20;            // both directions
  int max_attempts = 3;                        // retries on UNAVAILABLE
  absl::Duration initial_backoff = absl::Milliseconds(100);
  // Sent as `authorization: Bearer <token>` with every call; "" = none.
  std::string token;
  // TLS: on when `tls` or any file is set. tls_ca: PEM roots that must sign
  // the server's certificate ("" with `tls`: the system's roots);
  // tls_cert/tls_key: a client certificate (mutual TLS); tls_server_name:
  // the name checked in the server's certificate instead of the target's.
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
};

// The channel credentials and arguments `options` ask for; NOT_FOUND naming
// the file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options, grpc::ChannelArguments* args);
// Adds the bearer token of `options` (when set) to `context`.
void AddCallCredentials(const ClientOptions& options, grpc::ClientContext* context);

// Converts a grpc::Status to absl::Status (same canonical codes).
absl::Status FromGrpcStatus(const grpc::Status& status);

// Thread-safe (stubs and channels are).
class InferdClient {
 public:
  explicit InferdClient(const ClientOptions& options);

  // SERVING -> true, NOT_SERVING -> false; errors for unreachable/unknown.
  absl::StatusOr<bool> Health(const std::string& service = "inferd");
  absl::StatusOr<inference::ServerMetadataResponse> ServerMetadata();
  absl::StatusOr<inference::RepositoryIndexResponse> ListModels();
  absl::StatusOr<inference::ModelMetadataResponse> ModelMetadata(const std::string& model);
  absl::StatusOr<inference::ModelInferResponse> Infer(const inference::ModelInferRequest& request);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  inference::GRPCInferenceService::Stub& kserve() { return *kserve_; }

  // Runs `call` with a fresh context (deadline set) until it succeeds, fails
  // with a code other than UNAVAILABLE, or attempts run out.
  absl::Status WithRetries(const std::function<grpc::Status(grpc::ClientContext*)>& call);
  // The same with a per-attempt deadline of `timeout` instead of the
  // options' (for calls that wait on the server, e.g. WaitTask).
  absl::Status WithRetries(const std::function<grpc::Status(grpc::ClientContext*)>& call,
                           absl::Duration timeout);

  const ClientOptions& options() const { return options_; }

 private:
  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> kserve_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace inferd

#endif  // INFERD_CLIENTS_CPP_INFERD_CLIENT_H_
