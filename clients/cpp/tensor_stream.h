// Streaming tensor transfer over inferd.v1.Memory: UploadTensor sends a
// header and then the bytes in chunks (no single-message limit applies),
// DownloadTensor reassembles the server's chunks and checks their offsets.
// Both retry on UNAVAILABLE through InferdClient::WithRetries.
#ifndef INFERD_CLIENTS_CPP_TENSOR_STREAM_H_
#define INFERD_CLIENTS_CPP_TENSOR_STREAM_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clients/cpp/inferd_client.h"
#include "inferd/v1/memory.grpc.pb.h"

namespace inferd {

inline constexpr size_t kDefaultChunkBytes = 1 << 20;

// Allocates a tensor as `header` describes and fills it with `data` in
// chunks of `chunk_bytes` (> 0). Returns its TensorInfo; the daemon's
// status (INVALID_ARGUMENT naming the field, RESOURCE_EXHAUSTED naming the
// device and free bytes) otherwise.
absl::StatusOr<v1::TensorInfo> UploadTensor(InferdClient& client,
                                            const v1::AllocateTensorRequest& header,
                                            absl::string_view data,
                                            size_t chunk_bytes = kDefaultChunkBytes);

struct DownloadedTensor {
  v1::TensorInfo info;
  std::string data;  // info.byte_size() bytes
};

// Reads a stored tensor in chunks of `chunk_bytes` (0: the daemon's
// default). DATA_LOSS when a chunk arrives out of order or the total
// differs from the tensor's byte size.
absl::StatusOr<DownloadedTensor> DownloadTensor(InferdClient& client, const std::string& tensor_id,
                                                uint32_t chunk_bytes = 0);

}  // namespace inferd

#endif  // INFERD_CLIENTS_CPP_TENSOR_STREAM_H_
