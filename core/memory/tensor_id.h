// TensorId: the opaque 128-bit handle by which clients and engines name a
// tensor (an OpaqueId: random, unguessable, 32 lowercase hex digits; the
// all-zero id is never issued and means "no tensor").
#ifndef INFERD_CORE_MEMORY_TENSOR_ID_H_
#define INFERD_CORE_MEMORY_TENSOR_ID_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/opaque_id.h"

namespace inferd {

struct TensorIdTag {
  static constexpr absl::string_view kWhat = "tensor";
};
using TensorId = OpaqueId<TensorIdTag>;

// Returns a fresh random id. Thread-safe.
inline TensorId NewTensorId() { return TensorId::New(); }
// Returns the 32-hex-digit form.
inline std::string FormatTensorId(const TensorId& id) { return id.ToString(); }
// Parses 32 hex digits (either case). INVALID_ARGUMENT naming `field` for
// anything else, including the all-zero id.
inline absl::StatusOr<TensorId> ParseTensorId(absl::string_view text,
                                              absl::string_view field = "tensor_id") {
  return TensorId::Parse(text, field);
}

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_TENSOR_ID_H_
