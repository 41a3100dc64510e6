// Conversions between inferd.v1.Memory messages and the memory engine's
// plain structs (core/memory/memory_types.h, tensor_store.h). Errors are
// INVALID_ARGUMENT naming the wire field, e.g. "header.datatype: unsupported
// datatype 'X'". TensorInfo is converted by server/tensor_proto.h.
#ifndef INFERD_SERVER_MEMORY_PROTO_H_
#define INFERD_SERVER_MEMORY_PROTO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/memory/memory_engine.h"
#include "inferd/v1/memory.pb.h"

namespace inferd {

// An allocation request (the header of an upload too) under `field`
// ("request", "header").
absl::StatusOr<TensorRequest> TensorRequestFromProto(const v1::AllocateTensorRequest& req,
                                                     const std::string& field);
// A lease in seconds: negative is refused ("<field>: -1 is negative"), 0
// means none.
absl::StatusOr<absl::Duration> LeaseFromProto(double seconds, absl::string_view field);
// page_size within [0, 1000].
absl::StatusOr<TensorListOptions> TensorListOptionsFromProto(const v1::ListTensorsRequest& req);
// An empty datatype means FP32.
absl::StatusOr<BatchSizeRequest> BatchSizeRequestFromProto(
    const v1::GetOptimalBatchSizeRequest& req);

void CompactionResultToProto(const CompactionResult& result, v1::CompactResponse* out);
void MemoryStatsToProto(const std::vector<DeviceMemoryStats>& stats, v1::MemoryStats* out);

}  // namespace inferd

#endif  // INFERD_SERVER_MEMORY_PROTO_H_
