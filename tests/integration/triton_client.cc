#include "tests/integration/triton_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace inferd::testing {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

void SetShm(google::protobuf::Map<std::string, inference::InferParameter>* params,
            const std::string& region, uint64_t byte_size, uint64_t offset) {
  (*params)["shared_memory_region"].set_string_param(region);
  (*params)["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(byte_size));
  if (offset != 0) (*params)["shared_memory_offset"].set_int64_param(static_cast<int64_t>(offset));
}

}  // namespace

std::string RawStrings(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    const uint32_t len = static_cast<uint32_t>(v.size());
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>(len >> (8 * b)));
    out += v;
  }
  return out;
}

std::vector<std::string> ParseStrings(const std::string& raw) {
  std::vector<std::string> out;
  size_t off = 0;
  while (off + 4 <= raw.size()) {
    uint32_t len = 0;
    for (int b = 0; b < 4; ++b) len |= static_cast<uint32_t>(static_cast<uint8_t>(raw[off + b])) << (8 * b);
    off += 4;
    out.push_back(raw.substr(off, len));
    off += len;
  }
  return out;
}

const std::string* OutputRaw(const inference::ModelInferResponse& response,
                             const std::string& name) {
  for (int i = 0; i < response.outputs_size(); ++i) {
    if (response.outputs(i).name() == name && i < response.raw_output_contents_size()) {
      return &response.raw_output_contents(i);
    }
  }
  return nullptr;
}

TritonClient::TritonClient(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  stub_ = inference::GRPCInferenceService::NewStub(channel_);
}

TritonClient::TritonClient(std::shared_ptr<grpc::Channel> channel, std::string token)
    : channel_(std::move(channel)),
      token_(std::move(token)),
      stub_(inference::GRPCInferenceService::NewStub(channel_)) {}

TritonClient::~TritonClient() {
  if (stream_ != nullptr) (void)StopStream(/*cancel=*/true);
}

std::unique_ptr<grpc::ClientContext> TritonClient::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!token_.empty()) ctx->AddMetadata("authorization", "Bearer " + token_);
  return ctx;
}

inference::ModelInferRequest TritonClient::MakeRequest(const std::string& model,
                                                       const std::vector<InferInput>& inputs,
                                                       const std::vector<RequestedOutput>& outputs,
                                                       const std::string& request_id) const {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  r.set_id(request_id);
  for (const InferInput& in : inputs) {
    auto* t = r.add_inputs();
    t->set_name(in.name);
    t->set_datatype(in.datatype);
    for (int64_t d : in.shape) t->add_shape(d);
    if (!in.shm_region.empty()) {
      SetShm(t->mutable_parameters(), in.shm_region, in.shm_byte_size, in.shm_offset);
    } else {
      r.add_raw_input_contents(in.raw);
    }
  }
  for (const RequestedOutput& out : outputs) {
    auto* o = r.add_outputs();
    o->set_name(out.name);
    if (out.class_count > 0) {
      (*o->mutable_parameters())["classification"].set_int64_param(out.class_count);
    }
    if (!out.shm_region.empty()) {
      SetShm(o->mutable_parameters(), out.shm_region, out.shm_byte_size, out.shm_offset);
    }
  }
  return r;
}

absl::StatusOr<inference::ModelInferResponse> TritonClient::Infer(
    const std::string& model, const std::vector<InferInput>& inputs,
    const std::vector<RequestedOutput>& outputs, const std::string& request_id) {
  inference::ModelInferResponse resp;
  auto ctx = NewContext();
  grpc::Status st = stub_->ModelInfer(ctx.get(), MakeRequest(model, inputs, outputs, request_id),
                                      &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::Status TritonClient::LoadModel(const std::string& model) {
  inference::RepositoryModelLoadRequest req;
  req.set_model_name(model);
  inference::RepositoryModelLoadResponse resp;
  auto ctx = NewContext();
  return FromGrpc(stub_->RepositoryModelLoad(ctx.get(), req, &resp));
}

absl::Status TritonClient::UnloadModel(const std::string& model) {
  inference::RepositoryModelUnloadRequest req;
  req.set_model_name(model);
  (*req.mutable_parameters())["unload_dependents"].set_bool_param(false);
  inference::RepositoryModelUnloadResponse resp;
  auto ctx = NewContext();
  return FromGrpc(stub_->RepositoryModelUnload(ctx.get(), req, &resp));
}

absl::StatusOr<inference::ModelStatisticsResponse> TritonClient::GetInferenceStatistics(
    const std::string& model) {
  inference::ModelStatisticsRequest req;
  req.set_name(model);
  inference::ModelStatisticsResponse resp;
  auto ctx = NewContext();
  grpc::Status st = stub_->ModelStatistics(ctx.get(), req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<inference::ModelConfigResponse> TritonClient::GetModelConfig(
    const std::string& model) {
  inference::ModelConfigRequest req;
  req.set_name(model);
  inference::ModelConfigResponse resp;
  auto ctx = NewContext();
  grpc::Status st = stub_->ModelConfig(ctx.get(), req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<inference::ServerMetadataResponse> TritonClient::GetServerMetadata() {
  inference::ServerMetadataResponse resp;
  auto ctx = NewContext();
  grpc::Status st = stub_->ServerMetadata(ctx.get(), {}, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::Status TritonClient::RegisterSystemSharedMemory(const std::string& name,
                                                      const std::string& key, uint64_t byte_size,
                                                      uint64_t offset) {
  inference::SystemSharedMemoryRegisterRequest req;
  req.set_name(name);
  req.set_key(key);
  req.set_offset(offset);
  req.set_byte_size(byte_size);
  inference::SystemSharedMemoryRegisterResponse resp;
  auto ctx = NewContext();
  return FromGrpc(stub_->SystemSharedMemoryRegister(ctx.get(), req, &resp));
}

absl::Status TritonClient::UnregisterSystemSharedMemory(const std::string& name) {
  inference::SystemSharedMemoryUnregisterRequest req;
  req.set_name(name);
  inference::SystemSharedMemoryUnregisterResponse resp;
  auto ctx = NewContext();
  return FromGrpc(stub_->SystemSharedMemoryUnregister(ctx.get(), req, &resp));
}

absl::StatusOr<inference::SystemSharedMemoryStatusResponse>
TritonClient::GetSystemSharedMemoryStatus(const std::string& name) {
  inference::SystemSharedMemoryStatusRequest req;
  req.set_name(name);
  inference::SystemSharedMemoryStatusResponse resp;
  auto ctx = NewContext();
  grpc::Status st = stub_->SystemSharedMemoryStatus(ctx.get(), req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::Status TritonClient::RegisterCudaSharedMemory(const std::string& name,
                                                    const std::string& raw_handle,
                                                    int64_t device_id, uint64_t byte_size) {
  inference::CudaSharedMemoryRegisterRequest req;
  req.set_name(name);
  req.set_raw_handle(raw_handle);
  req.set_device_id(device_id);
  req.set_byte_size(byte_size);
  inference::CudaSharedMemoryRegisterResponse resp;
  auto ctx = NewContext();
  return FromGrpc(stub_->CudaSharedMemoryRegister(ctx.get(), req, &resp));
}

absl::StatusOr<inference::CudaSharedMemoryStatusResponse>
TritonClient::GetCudaSharedMemoryStatus() {
  inference::CudaSharedMemoryStatusResponse resp;
  auto ctx = NewContext();
  grpc::Status st = stub_->CudaSharedMemoryStatus(ctx.get(), {}, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

void TritonClient::StartStream(StreamCallback callback) {
  stream_ctx_ = std::make_unique<grpc::ClientContext>();
  stream_ = stub_->ModelStreamInfer(stream_ctx_.get());
  reader_ = std::thread([this, callback = std::move(callback)] {
    inference::ModelStreamInferResponse resp;
    while (stream_->Read(&resp)) callback(resp);
  });
}

bool TritonClient::AsyncStreamInfer(const inference::ModelInferRequest& request) {
  return stream_->Write(request);
}

grpc::Status TritonClient::StopStream(bool cancel) {
  if (cancel) {
    stream_ctx_->TryCancel();
  } else {
    stream_->WritesDone();
  }
  reader_.join();
  grpc::Status st = stream_->Finish();
  stream_.reset();
  stream_ctx_.reset();
  return st;
}

}  // namespace inferd::testing
