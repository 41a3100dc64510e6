// Model: what a task runs. A model has a signature (named, typed inputs and
// outputs), validates a request's input shapes into concrete output shapes,
// and enqueues its computation on a device stream. Backends implement it:
// builtin ops (identity, add, scale), mlp, and plugins.
#ifndef INFERD_CORE_MODELS_MODEL_H_
#define INFERD_CORE_MODELS_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/device/device.h"
#include "core/tensor/dtype.h"

namespace inferd {

using Shape = absl::InlinedVector<int64_t, 4>;

// A declared input or output. -1 in `shape` is a variable dimension;
// kInvalid dtype means "any numeric type, same as the other tensors".
struct TensorSpec {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
};

// What ModelMetadata reports. Constant for the life of a loaded model.
struct ModelSignature {
  std::string name;
  std::string version = "1";
  std::string platform;  // "inferd_builtin", "inferd_mlp", "inferd_plugin"
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  int max_batch_size = 0;  // 0: the model does not batch along dim 0
  // config.yaml scheduling.preemptible: with enable_task_preemption, a
  // running BACKGROUND execution may be requeued for a CRITICAL task.
  bool preemptible = false;
};

// A concrete tensor description for one request.
struct TensorDesc {
  DataType dtype = DataType::kInvalid;
  Shape shape;
  uint64_t byte_size = 0;
};

// Per-request knobs a client may pass as request parameters.
struct ModelParams {
  bool has_factor = false;
  double factor = 0;  // builtin "scale"
};

// A tensor in device memory, borrowed for one execution.
struct DeviceTensor {
  const TensorDesc* desc = nullptr;
  void* data = nullptr;
};

// Thread-safe: Validate and Execute are called concurrently from many
// threads for different requests.
class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelSignature& signature() const = 0;

  // Checks `inputs` (in signature order) and fills `outputs` (one per
  // signature output) with concrete dtypes, shapes and byte sizes.
  // INVALID_ARGUMENT naming the tensor and field when they do not fit.
  virtual absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams& params,
                                absl::Span<TensorDesc> outputs) const = 0;

  // Enqueues the computation on `stream`: reads `inputs`, writes `outputs`
  // (device memory of the sizes Validate gave). Returns at once.
  virtual absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                               const ModelParams& params,
                               absl::Span<const DeviceTensor> outputs) const = 0;
};

// Returns the builtin models that need no files: identity, add, scale.
std::vector<std::shared_ptr<const Model>> BuiltinModels();

// Marks `status` (not OK) as raised by the model's own code: an exception
// inside a torch model, a plugin's refusal. Such an error is the request's,
// not the device's: the scheduler neither retries it elsewhere nor counts
// it against the device's health. The code and message are kept.
absl::Status ModelError(absl::Status status);

// True when `status` was marked by ModelError.
bool IsModelError(const absl::Status& status);

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MODEL_H_
