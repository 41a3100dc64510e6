// TritonClient: a test client written from the public KServe v2 / Triton
// gRPC protocol the way tritonclient (Triton's Python and C++ client
// libraries) uses it: every input travels in raw_input_contents (or as
// shared_memory_* parameters, int64), requested outputs carry
// "classification" and shared_memory_* parameters, unload always sends
// unload_dependents, and streaming runs one ModelStreamInfer call with a
// reader thread delivering responses to a callback.
#ifndef INFERD_TESTS_INTEGRATION_TRITON_CLIENT_H_
#define INFERD_TESTS_INTEGRATION_TRITON_CLIENT_H_

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"

namespace inferd::testing {

// tritonclient's InferInput: raw bytes or a shared-memory range.
struct InferInput {
  InferInput(std::string n, std::vector<int64_t> s, std::string dt, std::string data = "")
      : name(std::move(n)), shape(std::move(s)), datatype(std::move(dt)), raw(std::move(data)) {}
  std::string name;
  std::vector<int64_t> shape;
  std::string datatype;
  std::string raw;             // set_data_from_numpy
  std::string shm_region;      // set_shared_memory
  uint64_t shm_byte_size = 0;
  uint64_t shm_offset = 0;
};

// tritonclient's InferRequestedOutput.
struct RequestedOutput {
  RequestedOutput(std::string n, int64_t classes = 0, std::string region = "",
                  uint64_t byte_size = 0, uint64_t offset = 0)
      : name(std::move(n)),
        class_count(classes),
        shm_region(std::move(region)),
        shm_byte_size(byte_size),
        shm_offset(offset) {}
  std::string name;
  int64_t class_count = 0;
  std::string shm_region;
  uint64_t shm_byte_size = 0;
  uint64_t shm_offset = 0;
};

template <typename T>
std::string Raw(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}
// BYTES elements serialized as tritonclient does (4-byte length + bytes).
std::string RawStrings(const std::vector<std::string>& values);
std::vector<std::string> ParseStrings(const std::string& raw);
template <typename T>
std::vector<T> Values(const std::string& raw) {
  std::vector<T> out(raw.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  return out;
}

// The bytes of output `name` of `response` (tritonclient's as_numpy).
const std::string* OutputRaw(const inference::ModelInferResponse& response,
                             const std::string& name);

class TritonClient {
 public:
  explicit TritonClient(const std::string& target);
  // Over a channel of the caller's making (TLS); every call carries
  // `authorization: Bearer <token>` when `token` is not empty.
  explicit TritonClient(std::shared_ptr<grpc::Channel> channel, std::string token = "");
  ~TritonClient();  // stops a running stream

  inference::ModelInferRequest MakeRequest(const std::string& model,
                                           const std::vector<InferInput>& inputs,
                                           const std::vector<RequestedOutput>& outputs,
                                           const std::string& request_id = "") const;
  absl::StatusOr<inference::ModelInferResponse> Infer(const std::string& model,
                                                      const std::vector<InferInput>& inputs,
                                                      const std::vector<RequestedOutput>& outputs =
                                                          {},
                                                      const std::string& request_id = "");

  absl::Status LoadModel(const std::string& model);
  absl::Status UnloadModel(const std::string& model);  // with unload_dependents
  absl::StatusOr<inference::ModelStatisticsResponse> GetInferenceStatistics(
      const std::string& model = "");
  absl::StatusOr<inference::ModelConfigResponse> GetModelConfig(const std::string& model);
  absl::StatusOr<inference::ServerMetadataResponse> GetServerMetadata();
  absl::Status RegisterSystemSharedMemory(const std::string& name, const std::string& key,
                                          uint64_t byte_size, uint64_t offset = 0);
  absl::Status UnregisterSystemSharedMemory(const std::string& name = "");
  absl::StatusOr<inference::SystemSharedMemoryStatusResponse> GetSystemSharedMemoryStatus(
      const std::string& name = "");
  absl::Status RegisterCudaSharedMemory(const std::string& name, const std::string& raw_handle,
                                        int64_t device_id, uint64_t byte_size);
  absl::StatusOr<inference::CudaSharedMemoryStatusResponse> GetCudaSharedMemoryStatus();

  // start_stream: responses (or stream errors) reach `callback` on a
  // reader thread; `callback` gets the response message.
  using StreamCallback = std::function<void(const inference::ModelStreamInferResponse&)>;
  void StartStream(StreamCallback callback);
  // async_stream_infer; false when the stream has broken.
  bool AsyncStreamInfer(const inference::ModelInferRequest& request);
  // stop_stream: closes the writing side and waits for the reader, or
  // cancels the call when `cancel`. Returns the call's final status.
  grpc::Status StopStream(bool cancel = false);

  inference::GRPCInferenceService::Stub& stub() { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> stream_ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<inference::ModelInferRequest,
                                           inference::ModelStreamInferResponse>>
      stream_;
  std::thread reader_;
};

}  // namespace inferd::testing

#endif  // INFERD_TESTS_INTEGRATION_TRITON_CLIENT_H_
