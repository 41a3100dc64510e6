#include "clients/cpp/inferd_client.h"

#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace inferd {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options, grpc::ChannelArguments* args) {
  if (!options.tls && options.tls_ca.empty() && options.tls_cert.empty() &&
      options.tls_key.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  for (auto [path, out] : {std::pair{&options.tls_ca, &ssl.pem_root_certs},
                           std::pair{&options.tls_cert, &ssl.pem_cert_chain},
                           std::pair{&options.tls_key, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    std::ifstream in(*path);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", *path, "'"));
    *out = text.str();
  }
  if (!options.tls_server_name.empty()) args->SetSslTargetNameOverride(options.tls_server_name);
  return grpc::SslCredentials(ssl);
}

void AddCallCredentials(const ClientOptions& options, grpc::ClientContext* context) {
  if (!options.token.empty()) context->AddMetadata("authorization", "Bearer " + options.token);
}

InferdClient::InferdClient(const ClientOptions& options) : options_(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  auto creds = ChannelCredentialsFor(options, &args);  // inferctl checks the files first
  channel_ = grpc::CreateCustomChannel(
      options.target, creds.ok() ? *creds : grpc::InsecureChannelCredentials(), args);
  kserve_ = inference::GRPCInferenceService::NewStub(channel_);
  health_ = grpc::health::v1::Health::NewStub(channel_);
}

absl::Status InferdClient::WithRetries(
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  return WithRetries(call, options_.timeout);
}

absl::Status InferdClient::WithRetries(
    const std::function<grpc::Status(grpc::ClientContext*)>& call, absl::Duration timeout) {
  absl::Duration backoff = options_.initial_backoff;
  grpc::Status st;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    AddCallCredentials(options_, &ctx);
    st = call(&ctx);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE || attempt >= options_.max_attempts) {
      break;
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));  // retry backoff
    backoff *= 2;
  }
  return FromGrpcStatus(st);
}

absl::StatusOr<bool> InferdClient::Health(const std::string& service) {
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  absl::Status st =
      WithRetries([&](grpc::ClientContext* ctx) { return health_->Check(ctx, req, &resp); });
  if (!st.ok()) return st;
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

absl::StatusOr<inference::ServerMetadataResponse> InferdClient::ServerMetadata() {
  inference::ServerMetadataRequest req;
  inference::ServerMetadataResponse resp;
  absl::Status st = WithRetries(
      [&](grpc::ClientContext* ctx) { return kserve_->ServerMetadata(ctx, req, &resp); });
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<inference::RepositoryIndexResponse> InferdClient::ListModels() {
  inference::RepositoryIndexRequest req;
  inference::RepositoryIndexResponse resp;
  absl::Status st = WithRetries(
      [&](grpc::ClientContext* ctx) { return kserve_->RepositoryIndex(ctx, req, &resp); });
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<inference::ModelMetadataResponse> InferdClient::ModelMetadata(
    const std::string& model) {
  inference::ModelMetadataRequest req;
  req.set_name(model);
  inference::ModelMetadataResponse resp;
  absl::Status st = WithRetries(
      [&](grpc::ClientContext* ctx) { return kserve_->ModelMetadata(ctx, req, &resp); });
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<inference::ModelInferResponse> InferdClient::Infer(
    const inference::ModelInferRequest& request) {
  inference::ModelInferResponse resp;
  absl::Status st = WithRetries(
      [&](grpc::ClientContext* ctx) { return kserve_->ModelInfer(ctx, request, &resp); });
  if (!st.ok()) return st;
  return resp;
}

}  // namespace inferd
