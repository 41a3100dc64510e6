#include "core/comm/comm_engine.h"

#include <utility>

#include "core/util/status_macros.h"

namespace inferd {

CommEngineOptions CommEngineOptionsFromConfig(const PerformanceConfig& config) {
  CommEngineOptions o;
  o.transfer.chunk_bytes = static_cast<uint64_t>(config.comm_chunk_size_mb) << 20;
  o.transfer.overlap_threshold_bytes = static_cast<uint64_t>(config.comm_overlap_threshold_mb)
                                       << 20;
  o.transfer.bandwidth_limit = config.comm_bandwidth_limit;
  o.collective.enable_nccl = config.enable_nccl;
  return o;
}

absl::StatusOr<std::unique_ptr<CommEngine>> CommEngine::Create(const CommEngineOptions& options,
                                                               std::vector<Device*> devices,
                                                               MemoryEngine* memory, Clock* clock,
                                                               prometheus::Registry& registry,
                                                               CommunicatorFactory factory,
                                                               TokenWaiter* waiter) {
  std::unique_ptr<CommEngine> engine(new CommEngine(registry));
  ASSIGN_OR_RETURN(engine->transfers_, TransferEngine::Create(options.transfer, devices, memory,
                                                              clock, &engine->metrics_, waiter));
  ASSIGN_OR_RETURN(engine->collectives_,
                   CollectiveEngine::Create(options.collective, std::move(devices), memory, clock,
                                            &engine->metrics_, std::move(factory)));
  return engine;
}

CommStats CommEngine::GetStats() {
  CommStats stats;
  transfers_->FillStats(&stats);
  collectives_->FillStats(&stats);
  return stats;
}

}  // namespace inferd
