// MlpCudaLibrary: libinferd_mlp_cuda.so (core/device/cuda/mlp/), loaded
// with dlopen so that cuBLASLt never enters the daemon's link line
// (ARCHITECTURE.md, "cuBLAS note"). Wraps its C ABI in absl::Status.
//
// Thread-safety: immutable after Load; all methods may be called
// concurrently (the library's own contract, mlp_cuda_api.h, applies to
// the instances).
#ifndef INFERD_CORE_MODELS_MLP_CUDA_LIBRARY_H_
#define INFERD_CORE_MODELS_MLP_CUDA_LIBRARY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/device/cuda/mlp/mlp_cuda_api.h"

namespace inferd {

class MlpCudaLibrary {
 public:
  // Loads the library at `path`. FAILED_PRECONDITION when it cannot be
  // opened, lacks a function or has another API version.
  static absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> Load(const std::string& path);

  // Returns the places searched for the library, in order: $INFERD_MLP_CUDA_LIB
  // when set (then only it), else <exe_dir>/../lib/, <exe_dir>/ and the
  // build tree's lib/ folder.
  static std::vector<std::string> SearchPath();

  // Loads the first library of SearchPath() that exists.
  // FAILED_PRECONDITION listing what was tried when none does.
  static absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> LoadDefault();

  ~MlpCudaLibrary();
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

  const std::string& path() const { return path_; }

 private:
  MlpCudaLibrary() = default;

  std::string path_;
  void* dl_ = nullptr;
  inferd_mlp_cuda_create_fn create_ = nullptr;
  inferd_mlp_cuda_execute_fn execute_ = nullptr;
  inferd_mlp_cuda_destroy_fn destroy_ = nullptr;
  inferd_mlp_cuda_get_stats_fn get_stats_ = nullptr;
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MLP_CUDA_LIBRARY_H_
