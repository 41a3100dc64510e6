#include "core/models/repository_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {

bool ParseModelControlMode(absl::string_view name, ModelControlMode* out) {
  if (name == "none") {
    *out = ModelControlMode::kNone;
  } else if (name == "explicit") {
    *out = ModelControlMode::kExplicit;
  } else if (name == "poll") {
    *out = ModelControlMode::kPoll;
  } else {
    return false;
  }
  return true;
}

RepositoryManager::RepositoryManager(const ModelRepository* repository, ModelRegistry* registry,
                                     ModelControlMode mode,
                                     std::vector<std::string> protected_names)
    : repository_(repository),
      registry_(registry),
      mode_(mode),
      protected_(protected_names.begin(), protected_names.end()) {}

RepositoryManager::~RepositoryManager() { StopPolling(); }

absl::Status RepositoryManager::LoadAll() {
  ASSIGN_OR_RETURN(const std::vector<std::string> names, repository_->List());
  for (const std::string& name : names) {
    if (protected_.contains(name)) {
      INFERD_LOG(kWarning, "model '", name,
                 "': repository folder skipped (a builtin model has that name)");
      continue;
    }
    RETURN_IF_ERROR(DoLoad(name, "load"));
    if (mode_ == ModelControlMode::kPoll) {
      absl::StatusOr<std::string> fingerprint = repository_->Fingerprint(name);
      absl::MutexLock lock(&poll_mu_);
      if (fingerprint.ok()) fingerprints_[name] = *std::move(fingerprint);
    }
  }
  return absl::OkStatus();
}

absl::Status RepositoryManager::CheckControl(absl::string_view name,
                                             absl::string_view verb) const {
  if (mode_ == ModelControlMode::kNone) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", name, "' cannot be ", verb,
        ": models.control_mode is none (models load at start only; use explicit or poll)"));
  }
  if (protected_.contains(name)) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name, "' is a builtin model and cannot be ", verb));
  }
  return absl::OkStatus();
}

absl::Status RepositoryManager::Load(absl::string_view name) {
  RETURN_IF_ERROR(CheckControl(name, "loaded or reloaded"));
  return DoLoad(name, "load");
}

absl::Status RepositoryManager::Unload(absl::string_view name) {
  RETURN_IF_ERROR(CheckControl(name, "unloaded"));
  return DoUnload(name, "unload");
}

absl::Status RepositoryManager::DoLoad(absl::string_view name, absl::string_view why) {
  const std::string key(name);
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    generation = ++generation_[key];
  }
  const bool was_loaded = registry_->Find(name).ok();
  absl::StatusOr<std::shared_ptr<const Model>> model = repository_->Load(name);
  // Names the repository does not hold leave no trace (clients choose them).
  const bool known = model.ok() || repository_->Contains(name);
  absl::MutexLock lock(&mu_);
  auto it = generation_.find(key);
  if (it == generation_.end() || it->second != generation) {
    INFERD_LOG(kInfo, "model '", name, "': ", why, " superseded by a later load or unload");
    return absl::AbortedError(
        absl::StrCat("model '", name, "': load superseded by a later load or unload"));
  }
  if (!model.ok()) {
    if (known) {
      last_error_[key] = std::string(model.status().message());
      INFERD_LOG(kWarning, "model '", name, "': ", why, " failed: ", model.status().message());
    } else {
      generation_.erase(it);
    }
    return model.status();
  }
  last_error_.erase(key);
  const std::string version = (*model)->signature().version;
  registry_->Add(*std::move(model));
  INFERD_LOG(kInfo, "model '", name, "' version ", version, ": ",
             was_loaded ? "reloaded" : "loaded", " (", why, ")");
  return absl::OkStatus();
}

absl::Status RepositoryManager::DoUnload(absl::string_view name, absl::string_view why) {
  absl::MutexLock lock(&mu_);
  if (auto it = generation_.find(name); it != generation_.end()) ++it->second;
  absl::StatusOr<std::shared_ptr<const Model>> model = registry_->Find(name);
  RETURN_IF_ERROR(registry_->Remove(name));
  INFERD_LOG(kInfo, "model '", name, "' version ", model.ok() ? (*model)->signature().version : "",
             ": unloaded (", why, ")");
  return absl::OkStatus();
}

void RepositoryManager::Poll() {
  absl::MutexLock poll_lock(&poll_mu_);
  absl::StatusOr<std::vector<std::string>> names = repository_->List();
  if (!names.ok()) {
    INFERD_LOG(kWarning, "model repository poll: ", names.status().message());
    return;
  }
  absl::flat_hash_set<std::string> present;
  for (const std::string& name : *names) {
    if (protected_.contains(name)) continue;
    present.insert(name);
    absl::StatusOr<std::string> fingerprint = repository_->Fingerprint(name);
    if (!fingerprint.ok()) continue;  // changing under us: next poll
    auto it = fingerprints_.find(name);
    const bool loaded = registry_->Find(name).ok();
    if (it != fingerprints_.end() && it->second == *fingerprint) continue;  // unchanged
    if (it == fingerprints_.end() && loaded) {
      fingerprints_[name] = *std::move(fingerprint);  // loaded by request meanwhile
      continue;
    }
    (void)DoLoad(name, it == fingerprints_.end() ? "poll: added" : "poll: changed");
    fingerprints_[name] = *std::move(fingerprint);
  }
  for (auto it = fingerprints_.begin(); it != fingerprints_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    if (registry_->Find(it->first).ok()) (void)DoUnload(it->first, "poll: removed");
    {
      absl::MutexLock lock(&mu_);
      last_error_.erase(it->first);
    }
    fingerprints_.erase(it++);
  }
}

void RepositoryManager::StartPolling(absl::Duration interval) {
  if (mode_ != ModelControlMode::kPoll || poller_.joinable()) return;
  poller_ = std::thread([this, interval] { PollLoop(interval); });
}

void RepositoryManager::StopPolling() {
  {
    absl::MutexLock lock(&thread_mu_);
    stop_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

void RepositoryManager::PollLoop(absl::Duration interval) {
  while (true) {
    {
      absl::MutexLock lock(&thread_mu_);
      // Wakes early only to stop.
      thread_mu_.AwaitWithTimeout(absl::Condition(&stop_), interval);
      if (stop_) return;
    }
    Poll();
  }
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
