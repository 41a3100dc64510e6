// The one place absl::Status becomes grpc::Status.
#ifndef INFERD_SERVER_STATUS_UTIL_H_
#define INFERD_SERVER_STATUS_UTIL_H_

#include <cstddef>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace inferd {

// Longest error message a reply carries; longer ones are cut (clients
// commonly refuse metadata above 8 KiB).
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// Converts `status` (same code; the message cut to kMaxStatusMessageBytes).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace inferd

#endif  // INFERD_SERVER_STATUS_UTIL_H_
