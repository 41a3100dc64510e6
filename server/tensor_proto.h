// Conversions between the memory engine's tensor types and inferd.v1
// messages, shared by every service that hands out tensor handles.
#ifndef INFERD_SERVER_TENSOR_PROTO_H_
#define INFERD_SERVER_TENSOR_PROTO_H_

#include "core/memory/tensor_store.h"
#include "inferd/v1/common.pb.h"

namespace inferd {

void TensorInfoToProto(const TensorInfo& info, v1::TensorInfo* out);

}  // namespace inferd

#endif  // INFERD_SERVER_TENSOR_PROTO_H_
