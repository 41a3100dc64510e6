#include "core/models/mlp_cuda_library.h"

#include "absl/strings/str_cat.h"

namespace inferd {
namespace {

constexpr char kLibraryName[] = "libinferd_mlp_cuda.so";
constexpr size_t kErrorLen = 512;

absl::Status FromCode(int32_t code, const char* message) {
  const std::string text = absl::StrCat("mlp on CUDA: ", message);
  switch (code) {
    case INFERD_MLP_OK:
      return absl::OkStatus();
    case INFERD_MLP_INVALID_ARGUMENT:
      return absl::InvalidArgumentError(text);
    case INFERD_MLP_RESOURCE_EXHAUSTED:
      return absl::ResourceExhaustedError(text);
    default:
      return absl::InternalError(text);
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> MlpCudaLibrary::Load(
    const std::string& path) {
  absl::StatusOr<std::unique_ptr<DynamicLibrary>> dl =
      DynamicLibrary::Open(path, "mlp CUDA library");
  if (!dl.ok()) return dl.status();
  std::shared_ptr<MlpCudaLibrary> lib(new MlpCudaLibrary());
  lib->dl_ = *std::move(dl);
  auto version = lib->dl_->Find<inferd_mlp_cuda_api_version_fn>("inferd_mlp_cuda_api_version");
  lib->create_ = lib->dl_->Find<inferd_mlp_cuda_create_fn>("inferd_mlp_cuda_create");
  lib->execute_ = lib->dl_->Find<inferd_mlp_cuda_execute_fn>("inferd_mlp_cuda_execute");
  lib->destroy_ = lib->dl_->Find<inferd_mlp_cuda_destroy_fn>("inferd_mlp_cuda_destroy");
  lib->get_stats_ = lib->dl_->Find<inferd_mlp_cuda_get_stats_fn>("inferd_mlp_cuda_get_stats");
  if (version == nullptr) {
    return absl::FailedPreconditionError("mlp CUDA library lacks inferd_mlp_cuda_api_version");
  }
  if (version() != INFERD_MLP_CUDA_API_VERSION) {
    return absl::FailedPreconditionError(absl::StrCat("mlp CUDA library has API version ",
                                                      version(), "; expected ",
                                                      INFERD_MLP_CUDA_API_VERSION));
  }
  if (lib->create_ == nullptr || lib->execute_ == nullptr || lib->destroy_ == nullptr ||
      lib->get_stats_ == nullptr) {
    return absl::FailedPreconditionError("mlp CUDA library lacks an inferd_mlp_cuda_* function");
  }
  return std::shared_ptr<const MlpCudaLibrary>(std::move(lib));
}

absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> MlpCudaLibrary::LoadDefault() {
  absl::StatusOr<std::string> path =
      FindBackendLibrary(kLibraryName, "INFERD_MLP_CUDA_LIB", "", "mlp on CUDA",
                         "set INFERD_MLP_CUDA_LIB, or install it in <bin>/../lib");
  if (!path.ok()) return path.status();
  return Load(*path);
}

absl::StatusOr<void*> MlpCudaLibrary::Create(const inferd_mlp_cuda_options& options) const {
  char error[kErrorLen] = {};
  void* handle = nullptr;
  const int32_t code = create_(&options, &handle, error, sizeof(error));
  if (code != INFERD_MLP_OK) return FromCode(code, error);
  return handle;
}

absl::Status MlpCudaLibrary::Execute(void* handle, int slot, void* stream, const void* x, void* y,
                                     int64_t batch) const {
  char error[kErrorLen] = {};
  const int32_t code = execute_(handle, slot, stream, x, y, batch, error, sizeof(error));
  return FromCode(code, error);
}

void MlpCudaLibrary::Destroy(void* handle) const { destroy_(handle); }

inferd_mlp_cuda_stats MlpCudaLibrary::Stats(void* handle) const {
  inferd_mlp_cuda_stats stats{};
  get_stats_(handle, &stats);
  return stats;
}

}  // namespace inferd
