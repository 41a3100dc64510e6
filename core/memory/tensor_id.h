// TensorId: the opaque 128-bit handle by which clients and engines name a
// tensor. Random (from the kernel's CSPRNG) so that handles cannot be
// guessed; formatted as 32 lowercase hex digits. The all-zero id is never
// issued and means "no tensor".
#ifndef INFERD_CORE_MEMORY_TENSOR_ID_H_
#define INFERD_CORE_MEMORY_TENSOR_ID_H_

#include <compare>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace inferd {

// A value type; thread-compatible.
struct TensorId {
  uint64_t hi = 0;
  uint64_t lo = 0;

  bool valid() const { return hi != 0 || lo != 0; }
  auto operator<=>(const TensorId&) const = default;

  template <typename H>
  friend H AbslHashValue(H h, const TensorId& id) {
    return H::combine(std::move(h), id.hi, id.lo);
  }
};

// Returns a fresh random id. Thread-safe.
TensorId NewTensorId();

// Returns the 32-hex-digit form.
std::string FormatTensorId(const TensorId& id);

// Parses 32 hex digits (either case). INVALID_ARGUMENT naming `field` for
// anything else, including the all-zero id.
absl::StatusOr<TensorId> ParseTensorId(absl::string_view text,
                                       absl::string_view field = "tensor_id");

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_TENSOR_ID_H_
