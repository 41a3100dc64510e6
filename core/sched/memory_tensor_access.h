// MemoryTensorAccess: TensorAccess over the memory engine, so tasks can take
// tensor-store handles as inputs (pinned while they are used) and keep their
// outputs on the device as new tensors owned by the task's owner. A separate
// library (core_sched_memory) so the scheduler itself does not depend on the
// memory engine.
#ifndef INFERD_CORE_SCHED_MEMORY_TENSOR_ACCESS_H_
#define INFERD_CORE_SCHED_MEMORY_TENSOR_ACCESS_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/memory/memory_engine.h"
#include "core/sched/tensor_access.h"

namespace inferd {

// Thread-safe. Borrows the engine, which must outlive it; every pin must be
// released before it goes.
class MemoryTensorAccess final : public TensorAccess {
 public:
  explicit MemoryTensorAccess(MemoryEngine* engine) : engine_(engine) {}

  // inferd::TensorAccess
  absl::StatusOr<StoredTensor> Describe(absl::string_view handle) override;
  absl::StatusOr<AccessedTensor> Pin(absl::string_view handle) override;
  absl::StatusOr<AccessedTensor> CreateOutput(int device, const TensorDesc& desc,
                                              absl::string_view owner,
                                              std::string* handle) override;
  void Release(const AccessedTensor& tensor) override;
  void Free(absl::string_view handle) override;

 private:
  absl::StatusOr<AccessedTensor> PinId(const TensorId& id);

  MemoryEngine* const engine_;
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, TensorPin> pins_ ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_MEMORY_TENSOR_ACCESS_H_
