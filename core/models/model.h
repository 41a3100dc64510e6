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
#include "core/models/model_statistics.h"
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
  // The model answers one request with 0..N responses (Triton's decoupled
  // transaction policy): it implements ExecuteDecoupled instead of Execute
  // and is served on ModelStreamInfer only.
  bool decoupled = false;
  // The model computes on the host from host tensors (ExecuteHost), e.g.
  // because its output sizes depend on the data (BYTES results).
  bool host_execution = false;
  // Executions of this model at once per device (its instances, as
  // Triton's instance_group count); 0: as many as the device has slots.
  // While that many of its batches run, the batching stage lets the next
  // batch keep filling instead of queueing it (docs/SCHEDULER.md).
  int max_executions_per_device = 0;
  // false: the model's executions on one device run one after another on
  // one stream instead of side by side on their slots' streams; the next
  // is enqueued while one runs, so the GPU starts it without a gap. For a
  // model whose one execution fills the GPU (config.yaml
  // scheduling.overlap_executions).
  bool overlap_executions = true;
  // With overlap_executions false: how long before the running execution's
  // predicted end the model's next batch is released (batching rule 5d;
  // scheduling.next_batch_lead_us, whose default this is).
  int64_t next_batch_lead_us = 100;
  // Class labels of output i (classification), read from the file its
  // config names (ModelConfig's label_filename); empty when it has none.
  struct OutputLabels {
    std::string file;
    std::vector<std::string> labels;
  };
  std::vector<OutputLabels> labels;
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

// One request's tensors in Model::ExecuteMany.
struct DeviceCall {
  absl::Span<const DeviceTensor> inputs;
  const ModelParams* params = nullptr;
  absl::Span<const DeviceTensor> outputs;
  // Every tensor of this call lies in the one device buffer that the
  // joinable calls of an ExecuteMany share: copies that run from one
  // call's tensors into the next's may be joined (never across buffers).
  bool joinable = false;
  absl::Status status;  // set by ExecuteMany
};

// A host tensor a decoupled model reads (inputs) or sends (outputs).
struct HostTensor {
  const TensorDesc* desc = nullptr;
  const void* data = nullptr;  // desc->byte_size bytes; null: output omitted
};

// Receives the responses of one request to a decoupled model. Implemented by
// the execution path; thread-safe.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // Sends one response; `outputs` has one entry per signature output (data
  // null for an output this response leaves out) and is copied. May block
  // while the client reads slowly (flow control). CANCELLED when the client
  // has gone: the model should stop and Finish.
  virtual absl::Status Send(absl::Span<const HostTensor> outputs) = 0;
  // Ends the request; called exactly once, after the last Send.
  virtual void Finish(absl::Status status) = 0;
};

// Hands out host memory for a host-executed model's outputs.
class HostOutputs {
 public:
  virtual ~HostOutputs() = default;
  // Returns `desc.byte_size` bytes for output `index`, or null when the
  // client did not ask for it.
  virtual void* Allocate(int index, const TensorDesc& desc) = 0;
};

// Thread-safe: Validate and Execute are called concurrently from many
// threads for different requests.
class Model {
 public:
  virtual ~Model() = default;

  // The cumulative statistics of this loaded model (ModelStatistics RPC);
  // they start at zero when the model loads.
  ModelStatistics& statistics() const { return *statistics_; }

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

  // Enqueues several requests' computations on `stream` (a group run by
  // ExecuteGroupOnDevice), each as Execute would, setting each call's
  // status; one call's failure is its own. The default calls Execute once
  // per call; a model that can serve several calls with fewer launches or
  // copies overrides it.
  virtual void ExecuteMany(Stream& stream, absl::Span<DeviceCall> calls) const;

  // Host-executed models (signature().host_execution) only: computes from
  // `inputs` (host tensors, signature order, passed Validate) on the
  // calling thread, allocating each output once its size is known.
  virtual absl::Status ExecuteHost(absl::Span<const HostTensor> inputs, const ModelParams& params,
                                   HostOutputs& outputs) const {
    return absl::UnimplementedError("model '" + signature().name + "' has no host execution");
  }

  // Decoupled models (signature().decoupled) only: starts answering one
  // request whose `inputs` (host tensors, signature order, valid until
  // writer->Finish) passed Validate. Calls writer->Send per response and
  // writer->Finish once, from the model's own threads; may return before.
  // The default finishes with UNIMPLEMENTED.
  virtual void ExecuteDecoupled(absl::Span<const HostTensor> inputs, const ModelParams& params,
                                ResponseWriter* writer) const {
    writer->Finish(absl::UnimplementedError(
        "model '" + signature().name + "' has no decoupled execution"));
  }

 private:
  const std::unique_ptr<ModelStatistics> statistics_ = std::make_unique<ModelStatistics>();
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

// ExecuteMany of a model whose output 0 is a copy of its input 0 (the
// identity builtins): copies that continue one another (a group's layout)
// go over as one device-to-device copy.
void ExecuteIdentityMany(Stream& stream, absl::Span<DeviceCall> calls);

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MODEL_H_
