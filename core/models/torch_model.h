// TorchModel: the `torch` backend. Serves a PyTorch model exported as an
// AOTInductor package (.pt2: torch.export + aoti_compile_and_package) or a
// TorchScript archive (.pt: torch.jit.script/trace + torch.jit.save),
// through libinferd_torch.so (TorchLibrary). The signature comes from
// config.yaml (declared_signature.h rules); each device gets
// `instances_per_device` TorchScript copies, an execution using copy
// (stream id mod copies), or one AOTInductor loader with a runner per
// device stream (at least instances_per_device), so that no execution
// waits for another's runner.
//
// On CUDA devices Execute hands the call to the instance's own thread (a
// WorkerThread per device and instance, which also ran its warmup) and
// waits while it enqueues: libtorch keeps cuDNN plans per thread, so an
// instance called from any request thread would plan again on each new
// thread and batch size. The library gets the slot's cudaStream_t: inputs
// are the execution's device buffers, wrapped without a copy; the model's
// kernels and the copies of its outputs into the output buffers are
// enqueued on that stream. On host devices the call runs on the host
// stream's worker, in stream order.
//
// CUDA graphs (torch.cuda_graphs): after its warmup run, each warmup
// batch size is recorded once per instance (largest first, so that the
// graphs share one input buffer per instance) on the instance's thread;
// an execution whose input shapes match a recorded size replays it (a
// copy in, one launch, a copy out) instead of launching each kernel.
// Other sizes run as without graphs.
//
// Errors: an exception inside the model is INTERNAL marked as ModelError
// (model.h): the request fails, the device stays healthy, nothing retries.
// Out of memory is RESOURCE_EXHAUSTED (retried per the scheduler's rules).
//
// Thread-safety: immutable after Create; Validate and Execute may be
// called concurrently.
#ifndef INFERD_CORE_MODELS_TORCH_MODEL_H_
#define INFERD_CORE_MODELS_TORCH_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/config/model_config.h"
#include "core/models/model.h"
#include "core/models/torch_library.h"
#include "core/util/worker_thread.h"

namespace inferd {

struct TorchModelOptions {
  std::string file;  // resolved, absolute
  TorchFormat format = TorchFormat::kTorchScript;
  int instances_per_device = 1;
  std::vector<int> warmup;  // batch sizes run once per copy at load
  // CUDA devices: each warmup size is recorded in a CUDA graph per copy
  // and replayed for batches of that size.
  bool cuda_graphs = false;
};

// "pytorch_libtorch" (TorchScript, Triton's name) or "pytorch_aoti".
absl::string_view TorchPlatform(TorchFormat format);

class TorchModel final : public Model {
 public:
  // Loads the model on each of `devices` (borrowed; must outlive the model)
  // and runs the warmup batches, which also check the model against its
  // config. Errors name the model and the config key (torch.file,
  // torch.warmup, inputs, outputs), never a server path: the library's
  // load errors (TorchLibrary::LoadModel), and INVALID_ARGUMENT when a
  // warmup batch fails.
  static absl::StatusOr<std::unique_ptr<TorchModel>> Create(
      ModelSignature signature, const TorchModelOptions& options,
      absl::Span<Device* const> devices, std::shared_ptr<const TorchLibrary> library);
  ~TorchModel() override;

  // inferd::Model
  const ModelSignature& signature() const override { return signature_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams& params,
                        absl::Span<TensorDesc> outputs) const override;
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                       const ModelParams& params,
                       absl::Span<const DeviceTensor> outputs) const override;

 private:
  TorchModel(ModelSignature signature, std::shared_ptr<const TorchLibrary> library,
             int instances, bool cuda_graphs);

  // TorchLibrary::Execute, or TorchLibrary::Capture (records the run in a
  // CUDA graph; CUDA devices only).
  using LibraryCall = absl::Status (TorchLibrary::*)(void*, int, void*,
                                                     absl::Span<const inferd_torch_tensor>,
                                                     absl::Span<const inferd_torch_tensor>) const;
  // Enqueues copy `instance`'s `call` on `stream`, on the copy's thread on
  // a CUDA device; errors start with the model's name when `name_model`.
  absl::Status Run(Stream& stream, int instance, absl::Span<const DeviceTensor> inputs,
                   absl::Span<const DeviceTensor> outputs, bool name_model,
                   LibraryCall call = &TorchLibrary::Execute) const;
  // Runs each of `sizes` once per copy on `device` (and records it, with
  // CUDA graphs on a CUDA device) and waits for it.
  absl::Status Warmup(Device& device, std::vector<int> sizes) const;

  // Constant after construction.
  const ModelSignature signature_;
  const std::shared_ptr<const TorchLibrary> library_;
  const int instances_;
  const bool cuda_graphs_;
  const std::string error_prefix_;  // "model '<name>': "
  absl::flat_hash_map<const Device*, void*> handles_;  // filled by Create only
  // CUDA devices: one thread per instance (filled by Create only; emptied
  // first by the destructor).
  absl::flat_hash_map<const Device*, std::vector<std::unique_ptr<WorkerThread>>> workers_;
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_TORCH_MODEL_H_
