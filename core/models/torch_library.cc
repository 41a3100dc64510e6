#include "core/models/torch_library.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/models/model.h"

namespace inferd {
namespace {

constexpr size_t kErrorLen = 1024;

absl::Status FromCode(int32_t code, const char* message) {
  switch (code) {
    case INFERD_TORCH_OK:
      return absl::OkStatus();
    case INFERD_TORCH_INVALID_ARGUMENT:
      return absl::InvalidArgumentError(message);
    case INFERD_TORCH_FAILED_PRECONDITION:
      return absl::FailedPreconditionError(message);
    case INFERD_TORCH_RESOURCE_EXHAUSTED:
      return absl::ResourceExhaustedError(message);
    case INFERD_TORCH_MODEL_ERROR:
      return ModelError(absl::InternalError(message));
    case INFERD_TORCH_UNIMPLEMENTED:
      return absl::UnimplementedError(message);
    default:
      return absl::InternalError(message);
  }
}

// One call of execute or capture (the same C signature).
absl::Status Call(inferd_torch_execute_fn fn, void* model, int instance, void* stream,
                  absl::Span<const inferd_torch_tensor> inputs,
                  absl::Span<const inferd_torch_tensor> outputs) {
  char error[kErrorLen];
  error[0] = '\0';
  const int32_t code =
      fn(model, instance, stream, inputs.data(), static_cast<int32_t>(inputs.size()),
         outputs.data(), static_cast<int32_t>(outputs.size()), error, sizeof(error));
  return FromCode(code, error);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TorchLibrary>> TorchLibrary::Load(const std::string& path) {
  absl::StatusOr<std::unique_ptr<DynamicLibrary>> dl =
      DynamicLibrary::Open(path, "the torch backend library");
  if (!dl.ok()) return dl.status();
  std::shared_ptr<TorchLibrary> lib(new TorchLibrary());
  lib->dl_ = *std::move(dl);
  auto api_version = lib->dl_->Find<inferd_torch_api_version_fn>("inferd_torch_api_version");
  lib->version_ = lib->dl_->Find<inferd_torch_libtorch_version_fn>("inferd_torch_libtorch_version");
  lib->supports_aoti_ = lib->dl_->Find<inferd_torch_supports_aoti_fn>("inferd_torch_supports_aoti");
  lib->load_ = lib->dl_->Find<inferd_torch_load_fn>("inferd_torch_load");
  lib->execute_ = lib->dl_->Find<inferd_torch_execute_fn>("inferd_torch_execute");
  lib->capture_ = lib->dl_->Find<inferd_torch_capture_fn>("inferd_torch_capture");
  lib->destroy_ = lib->dl_->Find<inferd_torch_destroy_fn>("inferd_torch_destroy");
  if (api_version == nullptr || lib->version_ == nullptr || lib->supports_aoti_ == nullptr ||
      lib->load_ == nullptr || lib->execute_ == nullptr || lib->capture_ == nullptr ||
      lib->destroy_ == nullptr) {
    return absl::FailedPreconditionError(
        "the torch backend library lacks an inferd_torch_* function");
  }
  if (api_version() != INFERD_TORCH_API_VERSION) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the torch backend library has API version ", api_version(), "; this inferd speaks ",
        INFERD_TORCH_API_VERSION));
  }
  return std::shared_ptr<const TorchLibrary>(std::move(lib));
}

absl::StatusOr<std::shared_ptr<const TorchLibrary>> TorchLibrary::LoadDefault(
    const std::string& configured) {
  absl::StatusOr<std::string> path = FindBackendLibrary(
      kFileName, "INFERD_TORCH_LIB", configured, "backend: torch",
      "build it with libtorch present (docs/MODELS.md), then install it in <bin>/../lib or set "
      "models.torch_backend_library");
  if (!path.ok()) return path.status();
  return Load(*path);
}

absl::StatusOr<void*> TorchLibrary::LoadModel(const inferd_torch_load_options& options) const {
  char error[kErrorLen] = {};
  void* model = nullptr;
  const int32_t code = load_(&options, &model, error, sizeof(error));
  if (code != INFERD_TORCH_OK) return FromCode(code, error);
  return model;
}

absl::Status TorchLibrary::Execute(void* model, int instance, void* stream,
                                   absl::Span<const inferd_torch_tensor> inputs,
                                   absl::Span<const inferd_torch_tensor> outputs) const {
  return Call(execute_, model, instance, stream, inputs, outputs);
}

absl::Status TorchLibrary::Capture(void* model, int instance, void* stream,
                                   absl::Span<const inferd_torch_tensor> inputs,
                                   absl::Span<const inferd_torch_tensor> outputs) const {
  return Call(capture_, model, instance, stream, inputs, outputs);
}

void TorchLibrary::Destroy(void* model) const { destroy_(model); }

}  // namespace inferd
