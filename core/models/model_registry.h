// ModelRegistry: the loaded models by name. Lookups take a reader lock and
// return an immutable snapshot (shared_ptr<const Model>) that stays valid
// while a request uses it, even if the model is unloaded meanwhile.
#ifndef INFERD_CORE_MODELS_MODEL_REGISTRY_H_
#define INFERD_CORE_MODELS_MODEL_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/models/model.h"

namespace inferd {

// Thread-safe.
class ModelRegistry {
 public:
  // Adds or replaces the model under its signature name.
  void Add(std::shared_ptr<const Model> model);
  // NOT_FOUND when no model has that name.
  absl::Status Remove(absl::string_view name);
  // Returns the model; NOT_FOUND naming the model (or the version, when a
  // non-empty version other than the loaded one is asked for).
  absl::StatusOr<std::shared_ptr<const Model>> Find(absl::string_view name,
                                                    absl::string_view version = "") const;
  // Returns all models, sorted by name.
  std::vector<std::shared_ptr<const Model>> List() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Model>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MODEL_REGISTRY_H_
