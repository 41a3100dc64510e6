// TensorAccess: what the scheduler needs from the tensor store to run tasks
// whose inputs are tensor handles and whose outputs stay on the device.
// The memory engine implements it (MemoryTensorAccess); tests use a fake.
// Handles are the store's opaque text form, so the scheduler does not
// depend on the memory engine's types.
#ifndef INFERD_CORE_SCHED_TENSOR_ACCESS_H_
#define INFERD_CORE_SCHED_TENSOR_ACCESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/models/model.h"

namespace inferd {

// A tensor held for one execution: `data` (device memory of `device`)
// stays valid and unmoved until Release(token).
struct AccessedTensor {
  int device = -1;
  void* data = nullptr;
  TensorDesc desc;
  uint64_t token = 0;
};

// Where a stored tensor lives and what it holds (no pin).
struct StoredTensor {
  int device = -1;
  TensorDesc desc;
};

// Thread-safe.
class TensorAccess {
 public:
  virtual ~TensorAccess() = default;

  // Describes the tensor. NOT_FOUND naming the handle; INVALID_ARGUMENT for
  // a malformed handle; FAILED_PRECONDITION for one not usable yet (a BYTES
  // tensor whose data is incomplete or malformed).
  virtual absl::StatusOr<StoredTensor> Describe(absl::string_view handle) = 0;
  // Pins the tensor for an execution. Errors as Describe.
  virtual absl::StatusOr<AccessedTensor> Pin(absl::string_view handle) = 0;
  // Creates a tensor of `desc` on `device`, owned by `owner`, to receive a
  // model output, and returns it pinned with its handle in `*handle`.
  // RESOURCE_EXHAUSTED naming the device when it does not fit.
  virtual absl::StatusOr<AccessedTensor> CreateOutput(int device, const TensorDesc& desc,
                                                      absl::string_view owner,
                                                      std::string* handle) = 0;
  // Unpins a tensor returned by Pin or CreateOutput.
  virtual void Release(const AccessedTensor& tensor) = 0;
  // Frees a tensor made by CreateOutput whose task did not succeed (after
  // Release). Errors are logged, not returned.
  virtual void Free(absl::string_view handle) = 0;
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_TENSOR_ACCESS_H_
