#include "core/models/model_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/util/echo.h"

namespace inferd {

void ModelRegistry::Add(std::shared_ptr<const Model> model) {
  std::string name = model->signature().name;
  absl::MutexLock lock(&mu_);
  models_[name] = std::move(model);
}

absl::Status ModelRegistry::Remove(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model ", Echo(name), " is not loaded"));
  }
  models_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Model>> ModelRegistry::Find(
    absl::string_view name, absl::string_view version) const {
  std::shared_ptr<const Model> model;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = models_.find(name);
    if (it != models_.end()) model = it->second;
  }
  if (model == nullptr) {
    return absl::NotFoundError(absl::StrCat("model_name: model ", Echo(name), " not found"));
  }
  if (!version.empty() && version != model->signature().version) {
    return absl::NotFoundError(absl::StrCat("model_version: model ", Echo(name), " has no version ",
                                            Echo(version), " (loaded: ", model->signature().version,
                                            ")"));
  }
  return model;
}

std::vector<std::shared_ptr<const Model>> ModelRegistry::List() const {
  std::vector<std::shared_ptr<const Model>> out;
  {
    absl::ReaderMutexLock lock(&mu_);
    out.reserve(models_.size());
    for (const auto& [name, m] : models_) out.push_back(m);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a->signature().name < b->signature().name;
  });
  return out;
}

}  // namespace inferd
