#include "core/models/repository_manager.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {

absl::Status RepositoryManager::LoadAll() {
  ASSIGN_OR_RETURN(const std::vector<std::string> names, repository_->List());
  for (const std::string& name : names) {
    RETURN_IF_ERROR(Load(name));
    INFERD_LOG(kInfo, "loaded model '", name, "' from the repository");
  }
  return absl::OkStatus();
}

absl::Status RepositoryManager::Load(absl::string_view name) {
  const std::string key(name);
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    generation = ++generation_[key];
  }
  absl::StatusOr<std::shared_ptr<const Model>> model = repository_->Load(name);
  // Names the repository does not hold leave no trace (clients choose them).
  const bool known = model.ok() || repository_->Contains(name);
  absl::MutexLock lock(&mu_);
  auto it = generation_.find(key);
  if (it == generation_.end() || it->second != generation) {
    return absl::AbortedError(
        absl::StrCat("model '", name, "': load superseded by a later load or unload"));
  }
  if (!model.ok()) {
    if (known) {
      last_error_[key] = std::string(model.status().message());
    } else {
      generation_.erase(it);
    }
    return model.status();
  }
  last_error_.erase(key);
  registry_->Add(*std::move(model));
  return absl::OkStatus();
}

absl::Status RepositoryManager::Unload(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (auto it = generation_.find(name); it != generation_.end()) ++it->second;
  return registry_->Remove(name);
}

std::vector<RepositoryIndexEntry> RepositoryManager::Index() const {
  std::vector<RepositoryIndexEntry> out;
  absl::flat_hash_set<std::string> loaded;
  for (const auto& model : registry_->List()) {
    const ModelSignature& sig = model->signature();
    loaded.insert(sig.name);
    out.push_back({sig.name, sig.version, "READY", ""});
  }
  absl::StatusOr<std::vector<std::string>> available = repository_->List();
  if (available.ok()) {
    absl::MutexLock lock(&mu_);
    for (const std::string& name : *available) {
      if (loaded.contains(name)) continue;
      auto it = last_error_.find(name);
      out.push_back({name, "", "UNAVAILABLE", it == last_error_.end() ? "unloaded" : it->second});
    }
  }
  std::sort(out.begin(), out.end(), [](const RepositoryIndexEntry& a, const RepositoryIndexEntry& b) {
    return a.name < b.name;
  });
  return out;
}

}  // namespace inferd
