// PluginModel: a model whose computation lives in a shared library with
// the C ABI of include/inferd/plugin_api.h (TensorRT, ONNX Runtime,
// libtorch or hand-written code brought by the user). The signature comes
// from config.yaml; the library gets one state per device.
//
// Loading: dlopen(RTLD_NOW | RTLD_LOCAL), dlsym of the five functions,
// version check, then inferd_plugin_create per device. On host devices
// Execute enqueues the plugin call on the host stream (stream order, NULL
// stream); on CUDA devices it calls the plugin at once with the
// cudaStream_t, and the plugin enqueues its work.
//
// Thread-safety: immutable after Create; Validate and Execute may be
// called concurrently (the plugin's execute must be reentrant).
#ifndef INFERD_CORE_MODELS_PLUGIN_MODEL_H_
#define INFERD_CORE_MODELS_PLUGIN_MODEL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/models/model.h"

namespace inferd {

struct PluginModelOptions {
  std::string library_path;  // resolved, absolute
  std::string model_dir;     // resolved, absolute; passed to the plugin
  std::vector<std::pair<std::string, std::string>> parameters;
};

class PluginLibrary;

class PluginModel final : public Model {
 public:
  // Loads the library and creates a state on each of `devices` (borrowed;
  // must outlive the model). FAILED_PRECONDITION when the library cannot
  // be loaded, lacks a function or has another API version; the plugin's
  // create error otherwise (INVALID_ARGUMENT, FAILED_PRECONDITION for an
  // unsupported device, RESOURCE_EXHAUSTED, INTERNAL), prefixed with the
  // model name and device.
  static absl::StatusOr<std::unique_ptr<PluginModel>> Create(ModelSignature signature,
                                                             const PluginModelOptions& options,
                                                             absl::Span<Device* const> devices);
  ~PluginModel() override;

  // inferd::Model
  const ModelSignature& signature() const override { return signature_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams& params,
                        absl::Span<TensorDesc> outputs) const override;
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                       const ModelParams& params,
                       absl::Span<const DeviceTensor> outputs) const override;

 private:
  PluginModel(ModelSignature signature, std::shared_ptr<const PluginLibrary> library);

  // Constant after construction.
  const ModelSignature signature_;
  const std::shared_ptr<const PluginLibrary> library_;
  absl::flat_hash_map<const Device*, void*> states_;  // filled by Create only
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_PLUGIN_MODEL_H_
