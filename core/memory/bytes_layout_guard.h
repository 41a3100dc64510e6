// BytesLayoutGuard: keeps BYTES tensors out of use until their layout (see
// core/tensor/bytes_framing.h) is known good. A BYTES tensor a client
// allocates starts unchecked; its writes must then come in order, each is
// checked as it arrives, and the write that completes a valid layout makes
// the tensor usable. Until then the memory engine refuses to pin it for
// work (a task, a transfer), so no reader ever sees a length that points
// past the tensor.
#ifndef INFERD_CORE_MEMORY_BYTES_LAYOUT_GUARD_H_
#define INFERD_CORE_MEMORY_BYTES_LAYOUT_GUARD_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/memory/tensor_id.h"
#include "core/tensor/bytes_framing.h"

namespace inferd {

// Thread-safe.
class BytesLayoutGuard {
 public:
  // Starts checking tensor `id`: `total_bytes` that must hold `elements`.
  void Track(const TensorId& id, uint64_t total_bytes, uint64_t elements);

  // Checks a write of `data` at `offset` to `id`. Returns true when the
  // write completes a valid layout (call Seal once it has landed), false
  // when more is to come or `id` is not tracked. INVALID_ARGUMENT for a
  // write out of order or bytes that cannot be the layout; the tensor then
  // stays unusable.
  absl::StatusOr<bool> CheckWrite(const TensorId& id, uint64_t offset,
                                  absl::Span<const uint8_t> data);

  // Stops checking `id`: it is usable (Seal) or gone (Forget).
  void Seal(const TensorId& id) { Forget(id); }
  void Forget(const TensorId& id);

  // FAILED_PRECONDITION, naming what is missing, while `id` is tracked.
  absl::Status CheckUsable(const TensorId& id) const;

  size_t tracked() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<TensorId, BytesFramingChecker> checkers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_BYTES_LAYOUT_GUARD_H_
