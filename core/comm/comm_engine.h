// CommEngine: the communication engine (transfers and collectives).
// It owns the engine's metrics, the TransferEngine (prioritized transfers
// between devices and the host) and the CollectiveEngine (broadcast,
// all-reduce, all-gather, reduce-scatter), and merges their stats into the
// one picture GetCommunicationStats reports. docs/COMM.md describes it.
#ifndef INFERD_CORE_COMM_COMM_ENGINE_H_
#define INFERD_CORE_COMM_COMM_ENGINE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/comm/collective_engine.h"
#include "core/comm/comm_metrics.h"
#include "core/comm/comm_stats.h"
#include "core/comm/transfer_engine.h"
#include "core/config/config.h"
#include "prometheus/registry.h"

namespace inferd {

struct CommEngineOptions {
  TransferEngineOptions transfer;
  CollectiveEngineOptions collective;
};

// CommOptionsFromConfig (core/config/engine_options.h) maps the config's
// keys onto these.

// Thread-safe. Devices, memory engine, clock and registry are borrowed and
// must outlive the engine.
class CommEngine {
 public:
  // Builds both parts (calibrating links unless options.transfer.link_peaks
  // is set). `factory` / `waiter` null: the defaults (see CollectiveEngine,
  // TransferEngine). Errors as the parts' Create.
  static absl::StatusOr<std::unique_ptr<CommEngine>> Create(const CommEngineOptions& options,
                                                            std::vector<Device*> devices,
                                                            MemoryEngine* memory, Clock* clock,
                                                            prometheus::Registry& registry,
                                                            CommunicatorFactory factory = nullptr,
                                                            TokenWaiter* waiter = nullptr);

  TransferEngine& transfers() { return *transfers_; }
  CollectiveEngine& collectives() { return *collectives_; }

  // Returns GetCommunicationStats' figures.
  CommStats GetStats();

 private:
  explicit CommEngine(prometheus::Registry& registry) : metrics_(registry) {}

  CommMetrics metrics_;
  // Collectives first out: they may hold pins the transfer engine does not.
  std::unique_ptr<TransferEngine> transfers_;
  std::unique_ptr<CollectiveEngine> collectives_;
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_COMM_ENGINE_H_
