// ModelRepository: a folder of models, one sub-folder each:
//
//   <root>/<model>/config.yaml      (core/config/model_config.h)
//   <root>/<model>/<files it names> (weights, plugin library, ...)
//
// Load(name) reads a model's config, its files and builds the Model on the
// repository's devices. Names come from clients (RepositoryModelLoad), so
// they are checked before they touch the filesystem: a name is a plain
// folder name ([A-Za-z0-9_.-], not starting with '.'), the model folder
// must resolve (realpath) inside the root, and every file a config names
// must be a relative path that resolves inside the model's folder. Error
// messages name the model and the config key, never a server path.
//
// Thread-safety: thread-safe. Load may run concurrently (for different or
// the same names); each call returns a new, independent Model.
#ifndef INFERD_CORE_MODELS_MODEL_REPOSITORY_H_
#define INFERD_CORE_MODELS_MODEL_REPOSITORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/config/model_config.h"
#include "core/device/device.h"
#include "core/models/mlp_cuda_library.h"
#include "core/models/model.h"
#include "core/models/torch_library.h"

namespace inferd {

struct ModelRepositoryOptions {
  // Where loaded models run (borrowed; must outlive every loaded model).
  std::vector<Device*> devices;
  // libinferd_mlp_cuda.so for mlp models on GPUs; "" searches
  // BackendLibrarySearchPath (dynamic_library.h) on first need.
  std::string mlp_cuda_library;
  // libinferd_torch.so for torch models (models.torch_backend_library); ""
  // searches beside the daemon on first need.
  std::string torch_backend_library;
  // Largest weights file read into memory.
  uint64_t max_weights_bytes = 64ull << 30;
};

class ModelRepository {
 public:
  // Opens the folder `root`. NOT_FOUND when it is not a directory.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Open(const std::string& root,
                                                               ModelRepositoryOptions options);

  // Returns the names of the sub-folders that hold a config.yaml, sorted.
  // Folders with invalid names are skipped.
  absl::StatusOr<std::vector<std::string>> List() const;

  // True when `name` is a valid name whose folder (inside the root) holds
  // a config.yaml.
  bool Contains(absl::string_view name) const;

  // Loads model `name`. INVALID_ARGUMENT for a bad name, a config error
  // (key path in the message), a file path that is absolute or climbs out
  // with "..", or bad weights; PERMISSION_DENIED for a model folder or
  // file that resolves (through symlinks) outside where it belongs;
  // NOT_FOUND for an unknown model or a missing file; FAILED_PRECONDITION
  // when a backend library cannot be loaded; the backend's errors otherwise.
  absl::StatusOr<std::shared_ptr<const Model>> Load(absl::string_view name) const;

  // Returns model `name`'s parsed config (same checks as Load, without
  // reading weights or building the model).
  absl::StatusOr<ModelConfigSpec> ReadConfig(absl::string_view name) const;

  // Returns a digest of model `name`'s folder (each file's relative path,
  // size and modification time, up to kMaxFingerprintFiles files) that
  // changes when any file is added, removed or rewritten. Poll mode
  // compares it between scans. Errors as ReadConfig's for the folder.
  static constexpr int kMaxFingerprintFiles = 4096;
  absl::StatusOr<std::string> Fingerprint(absl::string_view name) const;

 private:
  ModelRepository(std::string root, ModelRepositoryOptions options);

  // Returns the realpath of model `name`'s folder (checks as Load).
  absl::StatusOr<std::string> ModelDir(absl::string_view name) const;
  absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> MlpCuda() const;
  absl::StatusOr<std::shared_ptr<const TorchLibrary>> Torch() const;

  // Constant after construction.
  const std::string root_;  // realpath
  const ModelRepositoryOptions options_;
  bool has_cuda_device_ = false;

  mutable absl::Mutex mu_;
  mutable std::shared_ptr<const MlpCudaLibrary> mlp_cuda_ ABSL_GUARDED_BY(mu_);
  mutable std::shared_ptr<const TorchLibrary> torch_ ABSL_GUARDED_BY(mu_);
};

// Resolves `relative` (a path from a config, under key `key`) inside the
// folder `dir` (a realpath). INVALID_ARGUMENT when empty, absolute or
// containing a ".." component; NOT_FOUND when it does not exist;
// PERMISSION_DENIED when it resolves outside `dir`. Returns the realpath.
absl::StatusOr<std::string> ResolveInside(const std::string& dir, absl::string_view relative,
                                          absl::string_view key);

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MODEL_REPOSITORY_H_
