// TorchLibrary: libinferd_torch.so (backends/torch/), the PyTorch backend,
// loaded with dlopen so that libtorch never enters the daemon's link line.
// Wraps its C ABI (backends/torch/torch_backend_api.h) in absl::Status.
//
// Thread-safety: immutable after Load; all methods may be called
// concurrently (the library's own contract applies to the models).
#ifndef INFERD_CORE_MODELS_TORCH_LIBRARY_H_
#define INFERD_CORE_MODELS_TORCH_LIBRARY_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/torch/torch_backend_api.h"
#include "core/models/dynamic_library.h"

namespace inferd {

class TorchLibrary {
 public:
  // The library's file name.
  static constexpr char kFileName[] = "libinferd_torch.so";

  // Loads the library at `path`. FAILED_PRECONDITION when it cannot be
  // opened, lacks a function or has another API version.
  static absl::StatusOr<std::shared_ptr<const TorchLibrary>> Load(const std::string& path);

  // Loads the first library that exists of BackendLibrarySearchPath with
  // $INFERD_TORCH_LIB and `configured` (models.torch_backend_library).
  static absl::StatusOr<std::shared_ptr<const TorchLibrary>> LoadDefault(
      const std::string& configured);

  // The libtorch version the library was built against ("2.11.0").
  std::string libtorch_version() const { return version_(); }
  // True when it can load AOTInductor packages.
  bool supports_aoti() const { return supports_aoti_() != 0; }

  // Loads a model file onto one device. The caller owns the handle and
  // frees it with Destroy. The library's code as a status (INVALID_ARGUMENT
  // for a file that is no model, FAILED_PRECONDITION for one built for
  // another device or libtorch, UNIMPLEMENTED for a format this libtorch
  // lacks, RESOURCE_EXHAUSTED, INTERNAL).
  absl::StatusOr<void*> LoadModel(const inferd_torch_load_options& options) const;
  // Runs one call of a loaded model. Errors of the model's own making are
  // INTERNAL marked as ModelError (model.h); RESOURCE_EXHAUSTED for out of
  // memory; INTERNAL unmarked for a device fault.
  absl::Status Execute(void* model, int instance, void* stream,
                       absl::Span<const inferd_torch_tensor> inputs,
                       absl::Span<const inferd_torch_tensor> outputs) const;
  // Records a CUDA graph of one run of `instance` for these input shapes
  // and replays it into `outputs` (inferd_torch_capture). INVALID_ARGUMENT
  // naming torch.cuda_graphs when the model's run cannot be recorded.
  absl::Status Capture(void* model, int instance, void* stream,
                       absl::Span<const inferd_torch_tensor> inputs,
                       absl::Span<const inferd_torch_tensor> outputs) const;
  void Destroy(void* model) const;

 private:
  TorchLibrary() = default;

  std::unique_ptr<DynamicLibrary> dl_;
  inferd_torch_libtorch_version_fn version_ = nullptr;
  inferd_torch_supports_aoti_fn supports_aoti_ = nullptr;
  inferd_torch_load_fn load_ = nullptr;
  inferd_torch_execute_fn execute_ = nullptr;
  inferd_torch_capture_fn capture_ = nullptr;
  inferd_torch_destroy_fn destroy_ = nullptr;
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_TORCH_LIBRARY_H_
