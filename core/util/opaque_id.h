// OpaqueId: a random 128-bit handle drawn from the kernel's CSPRNG, so ids
// can be neither guessed nor enumerated; written as 32 lowercase hex digits.
// The all-zero id is never issued and means "none". The Tag makes tensor and
// task ids distinct types (TensorId, TaskId). A value type.
#ifndef INFERD_CORE_UTIL_OPAQUE_ID_H_
#define INFERD_CORE_UTIL_OPAQUE_ID_H_

#include <compare>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace inferd {
namespace opaque_id_internal {

// Fills a fresh random non-zero pair. Thread-safe; buffers getrandom(2) so
// most ids cost no system call.
void Random128(uint64_t* hi, uint64_t* lo);
std::string Format128(uint64_t hi, uint64_t lo);
// INVALID_ARGUMENT naming `field` (and the kind of id, `what`) unless `text`
// is 32 hex digits, not all zero.
absl::Status Parse128(absl::string_view text, absl::string_view field, absl::string_view what,
                      uint64_t* hi, uint64_t* lo);

}  // namespace opaque_id_internal

template <typename Tag>
struct OpaqueId {
  uint64_t hi = 0;
  uint64_t lo = 0;

  bool valid() const { return hi != 0 || lo != 0; }
  auto operator<=>(const OpaqueId&) const = default;

  template <typename H>
  friend H AbslHashValue(H h, const OpaqueId& id) {
    return H::combine(std::move(h), id.hi, id.lo);
  }

  static OpaqueId New() {
    OpaqueId id;
    opaque_id_internal::Random128(&id.hi, &id.lo);
    return id;
  }
  std::string ToString() const { return opaque_id_internal::Format128(hi, lo); }
  static absl::StatusOr<OpaqueId> Parse(absl::string_view text, absl::string_view field) {
    OpaqueId id;
    absl::Status st = opaque_id_internal::Parse128(text, field, Tag::kWhat, &id.hi, &id.lo);
    if (!st.ok()) return st;
    return id;
  }
};

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_OPAQUE_ID_H_
