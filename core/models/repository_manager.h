// RepositoryManager: keeps a ModelRegistry in step with a ModelRepository —
// loads every model at start, loads (or reloads) and unloads models by
// name on request (KServe RepositoryModelLoad / RepositoryModelUnload),
// and lists what is loaded and what could be (RepositoryIndex).
//
// Loading builds the model (reads weights, uploads them to GPUs) with no
// lock held. A load that finishes after a later Load or Unload of the same
// name started is discarded (ABORTED), so the last request wins.
//
// Control modes follow Triton's: kNone refuses Load and Unload by request
// (the repository loads at start only); kExplicit takes them; kPoll also
// re-scans the repository (Poll, or the thread StartPolling runs) and
// loads added folders, reloads changed ones and unloads removed ones.
// Protected (builtin) names are never loaded over, reloaded or unloaded.
// Every load, reload, unload and failure writes one log line naming the
// model, its version and the outcome.
//
// Thread-safety: thread-safe.
#ifndef INFERD_CORE_MODELS_REPOSITORY_MANAGER_H_
#define INFERD_CORE_MODELS_REPOSITORY_MANAGER_H_

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
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

enum class ModelControlMode { kNone, kExplicit, kPoll };

// Parses "none" | "explicit" | "poll" (models.control_mode).
bool ParseModelControlMode(absl::string_view name, ModelControlMode* out);

class RepositoryManager {
 public:
  // Borrows both; they must outlive the manager. `protected_names` (the
  // builtin models) are refused by Load and Unload.
  RepositoryManager(const ModelRepository* repository, ModelRegistry* registry,
                    ModelControlMode mode = ModelControlMode::kExplicit,
                    std::vector<std::string> protected_names = {});
  ~RepositoryManager();  // StopPolling()

  ModelControlMode mode() const { return mode_; }

  // Loads every model the repository lists. Stops at the first failure and
  // returns its error (which names the model).
  absl::Status LoadAll();

  // RepositoryModelLoad: loads `name` from the repository and adds it to
  // the registry, replacing a loaded model of that name. On error the
  // registry is unchanged. FAILED_PRECONDITION in mode kNone or for a
  // protected name; errors as ModelRepository::Load; ABORTED when a later
  // Load or Unload of `name` superseded this one.
  absl::Status Load(absl::string_view name);

  // RepositoryModelUnload: removes `name` from the registry.
  // FAILED_PRECONDITION in mode kNone or for a protected name; NOT_FOUND
  // when it is not loaded. Requests already running keep their snapshot.
  absl::Status Unload(absl::string_view name);

  // Poll mode's re-scan, once: loads folders not loaded yet (and not failed
  // with the same contents), reloads folders whose files changed, unloads
  // models whose folder is gone. Failures are logged and kept for Index.
  void Poll();
  // Runs Poll every `interval` on a thread until StopPolling. Only in kPoll.
  void StartPolling(absl::Duration interval);
  void StopPolling();

  // Loaded models (READY), then repository models that are not loaded
  // (UNAVAILABLE), sorted by name.
  std::vector<RepositoryIndexEntry> Index() const;

 private:
  // Load and Unload without the mode check.
  absl::Status DoLoad(absl::string_view name, absl::string_view why);
  absl::Status DoUnload(absl::string_view name, absl::string_view why);
  absl::Status CheckControl(absl::string_view name, absl::string_view verb) const;
  void PollLoop(absl::Duration interval);

  // Constant after construction.
  const ModelRepository* const repository_;
  ModelRegistry* const registry_;
  const ModelControlMode mode_;
  const absl::flat_hash_set<std::string> protected_;

  // Poll mode: each model folder's fingerprint when it was last loaded or
  // failed to load. Touched only by Poll (serialized by poll_mu_).
  absl::Mutex poll_mu_;
  absl::flat_hash_map<std::string, std::string> fingerprints_ ABSL_GUARDED_BY(poll_mu_);

  absl::Mutex thread_mu_;
  bool stop_ ABSL_GUARDED_BY(thread_mu_) = false;
  std::thread poller_;

  mutable absl::Mutex mu_;
  // Bumped by every Load/Unload of a name; a load commits only if the
  // generation it started with is still current.
  absl::flat_hash_map<std::string, uint64_t> generation_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> last_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_REPOSITORY_MANAGER_H_
