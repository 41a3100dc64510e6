// RepositoryManager: keeps a ModelRegistry in step with a ModelRepository —
// loads every model at start, loads (or reloads) and unloads models by
// name on request (KServe RepositoryModelLoad / RepositoryModelUnload),
// and lists what is loaded and what could be (RepositoryIndex).
//
// Loading builds the model (reads weights, uploads them to GPUs) with no
// lock held. A load that finishes after a later Load or Unload of the same
// name started is discarded (ABORTED), so the last request wins.
//
// Thread-safety: thread-safe.
#ifndef INFERD_CORE_MODELS_REPOSITORY_MANAGER_H_
#define INFERD_CORE_MODELS_REPOSITORY_MANAGER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/models/model_registry.h"
#include "core/models/model_repository.h"

namespace inferd {

struct RepositoryIndexEntry {
  std::string name;
  std::string version;  // "" when not loaded
  std::string state;    // "READY" | "UNAVAILABLE"
  std::string reason;   // why UNAVAILABLE: "unloaded", or the last load error
};

class RepositoryManager {
 public:
  // Borrows both; they must outlive the manager.
  RepositoryManager(const ModelRepository* repository, ModelRegistry* registry)
      : repository_(repository), registry_(registry) {}

  // Loads every model the repository lists. Stops at the first failure and
  // returns its error (which names the model).
  absl::Status LoadAll();

  // Loads `name` from the repository and adds it to the registry, replacing
  // a loaded model of that name. On error the registry is unchanged.
  // Errors as ModelRepository::Load; ABORTED when a later Load or Unload
  // of `name` superseded this one.
  absl::Status Load(absl::string_view name);

  // Removes `name` from the registry. NOT_FOUND when it is not loaded.
  // Requests already running keep their snapshot of the model.
  absl::Status Unload(absl::string_view name);

  // Loaded models (READY), then repository models that are not loaded
  // (UNAVAILABLE), sorted by name.
  std::vector<RepositoryIndexEntry> Index() const;

 private:
  // Constant after construction.
  const ModelRepository* const repository_;
  ModelRegistry* const registry_;

  mutable absl::Mutex mu_;
  // Bumped by every Load/Unload of a name; a load commits only if the
  // generation it started with is still current.
  absl::flat_hash_map<std::string, uint64_t> generation_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> last_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_REPOSITORY_MANAGER_H_
