// Conversions between KServe v2 tensor encodings and raw little-endian
// bytes: the typed InferTensorContents fields <-> contiguous row-major data.
#ifndef INFERD_SERVER_TENSOR_CODEC_H_
#define INFERD_SERVER_TENSOR_CODEC_H_

#include <string>

#include "absl/status/status.h"
#include "core/tensor/dtype.h"
#include "inference/grpc_service.pb.h"

namespace inferd {

// Decodes the typed `contents` of a `dtype` tensor with `elements` elements
// into raw bytes (BYTES: 4-byte length-prefixed elements). INVALID_ARGUMENT
// naming `field` when the wrong field is used or the count differs; FP16 and
// BF16 have no typed field (raw only).
absl::Status DecodeTypedContents(const inference::InferTensorContents& contents, DataType dtype,
                                 uint64_t elements, const std::string& field, std::string* out);

// Encodes raw bytes of `dtype` into typed contents (for clients that want
// them; FP16/BF16 are not representable: INVALID_ARGUMENT).
absl::Status EncodeTypedContents(DataType dtype, const std::string& raw,
                                 inference::InferTensorContents* contents);

}  // namespace inferd

#endif  // INFERD_SERVER_TENSOR_CODEC_H_
