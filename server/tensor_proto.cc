#include "server/tensor_proto.h"

#include "absl/time/time.h"

namespace inferd {

void TensorInfoToProto(const TensorInfo& info, v1::TensorInfo* out) {
  out->set_id(FormatTensorId(info.id));
  const absl::string_view dt = DataTypeName(info.dtype);
  out->set_datatype(dt.data(), dt.size());
  out->mutable_shape()->Assign(info.shape.begin(), info.shape.end());
  out->set_device(info.device);
  out->set_byte_size(info.byte_size);
  out->set_owner(info.owner);
  out->set_lease_expires_unix_ms(absl::ToUnixMillis(info.lease_expiry));
  out->set_pin_count(static_cast<uint32_t>(info.pin_count));
  out->set_created_unix_ms(absl::ToUnixMillis(info.created));
}

}  // namespace inferd
