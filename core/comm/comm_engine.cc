#include "core/comm/comm_engine.h"

#include <utility>

#include "core/util/status_macros.h"

namespace inferd {

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
