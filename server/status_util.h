// The one place absl::Status becomes grpc::Status.
#ifndef INFERD_SERVER_STATUS_UTIL_H_
#define INFERD_SERVER_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace inferd {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace inferd

#endif  // INFERD_SERVER_STATUS_UTIL_H_
