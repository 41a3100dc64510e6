// MlpCudaLibrary: libinferd_mlp_cuda.so (core/device/cuda/mlp/), loaded
// with dlopen so that cuBLASLt never enters the daemon's link line
// (docs/ARCHITECTURE.md, "cuBLAS and libtorch"). Wraps its C ABI in absl::Status.
//
// Thread-safety: immutable after Load; all methods may be called
// concurrently (the library's own contract, mlp_cuda_api.h, applies to
// the instances).
#ifndef INFERD_CORE_MODELS_MLP_CUDA_LIBRARY_H_
#define INFERD_CORE_MODELS_MLP_CUDA_LIBRARY_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/device/cuda/mlp/mlp_cuda_api.h"
#include "core/models/dynamic_library.h"

namespace inferd {

class MlpCudaLibrary {
 public:
  // Loads the library at `path`. FAILED_PRECONDITION when it cannot be
  // opened, lacks a function or has another API version.
  static absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> Load(const std::string& path);

  // Loads the first library that exists of BackendLibrarySearchPath
  // (dynamic_library.h) with $INFERD_MLP_CUDA_LIB. FAILED_PRECONDITION when
  // none does.
  static absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> LoadDefault();

  MlpCudaLibrary(const MlpCudaLibrary&) = delete;
  MlpCudaLibrary& operator=(const MlpCudaLibrary&) = delete;

  // Creates an instance (uploads the weights; synchronous). The caller owns
  // the handle and frees it with Destroy. INVALID_ARGUMENT,
  // RESOURCE_EXHAUSTED (GPU memory) or INTERNAL with the library's message.
  absl::StatusOr<void*> Create(const inferd_mlp_cuda_options& options) const;
  // Enqueues one forward pass on `stream` (a cudaStream_t).
  absl::Status Execute(void* handle, int slot, void* stream, const void* x, void* y,
                       int64_t batch) const;
  void Destroy(void* handle) const;
  // Returns the instance's graph/eager counters.
  inferd_mlp_cuda_stats Stats(void* handle) const;

  const std::string& path() const { return dl_->path(); }

 private:
  MlpCudaLibrary() = default;

  std::unique_ptr<DynamicLibrary> dl_;
  inferd_mlp_cuda_create_fn create_ = nullptr;
  inferd_mlp_cuda_execute_fn execute_ = nullptr;
  inferd_mlp_cuda_destroy_fn destroy_ = nullptr;
  inferd_mlp_cuda_get_stats_fn get_stats_ = nullptr;
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MLP_CUDA_LIBRARY_H_
