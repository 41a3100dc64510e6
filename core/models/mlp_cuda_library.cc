#include "core/models/mlp_cuda_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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

std::string ExeDir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> MlpCudaLibrary::Load(
    const std::string& path) {
  void* dl = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* why = ::dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("mlp CUDA library cannot be loaded: ", why != nullptr ? why : "dlopen failed"));
  }
  std::shared_ptr<MlpCudaLibrary> lib(new MlpCudaLibrary());
  lib->path_ = path;
  lib->dl_ = dl;
  auto version = reinterpret_cast<inferd_mlp_cuda_api_version_fn>(
      ::dlsym(dl, "inferd_mlp_cuda_api_version"));
  lib->create_ = reinterpret_cast<inferd_mlp_cuda_create_fn>(::dlsym(dl, "inferd_mlp_cuda_create"));
  lib->execute_ =
      reinterpret_cast<inferd_mlp_cuda_execute_fn>(::dlsym(dl, "inferd_mlp_cuda_execute"));
  lib->destroy_ =
      reinterpret_cast<inferd_mlp_cuda_destroy_fn>(::dlsym(dl, "inferd_mlp_cuda_destroy"));
  lib->get_stats_ =
      reinterpret_cast<inferd_mlp_cuda_get_stats_fn>(::dlsym(dl, "inferd_mlp_cuda_get_stats"));
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

std::vector<std::string> MlpCudaLibrary::SearchPath() {
  if (const char* env = std::getenv("INFERD_MLP_CUDA_LIB"); env != nullptr && *env != '\0') {
    return {env};
  }
  std::vector<std::string> paths;
  const std::string exe_dir = ExeDir();
  if (!exe_dir.empty()) {
    paths.push_back(absl::StrCat(exe_dir, "/../lib/", kLibraryName));
    paths.push_back(absl::StrCat(exe_dir, "/", kLibraryName));
  }
#ifdef INFERD_MLP_CUDA_BUILD_LIB_DIR
  paths.push_back(absl::StrCat(INFERD_MLP_CUDA_BUILD_LIB_DIR, "/", kLibraryName));
#endif
  return paths;
}

absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> MlpCudaLibrary::LoadDefault() {
  const std::vector<std::string> paths = SearchPath();
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return Load(path);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("mlp on CUDA needs ", kLibraryName,
                   " (set INFERD_MLP_CUDA_LIB, or install it in <bin>/../lib); tried ",
                   absl::StrJoin(paths, ", ")));
}

MlpCudaLibrary::~MlpCudaLibrary() {
  if (dl_ != nullptr) ::dlclose(dl_);
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
