// DirectDispatcher: places each request round-robin over devices and their
// streams and runs it at once, with no queueing: ModelInfer's path to a device
// when enable_advanced_scheduling is false. The scheduler engine (core/sched)
// is the other path, with queues, priorities, batching and placement.
#ifndef INFERD_CORE_INFER_DIRECT_DISPATCHER_H_
#define INFERD_CORE_INFER_DIRECT_DISPATCHER_H_

#include <atomic>
#include <vector>

#include "core/device/device.h"
#include "core/device/device_allocator.h"
#include "core/infer/infer_request.h"
#include "core/util/clock.h"

namespace inferd {

// Thread-safe; lock-free on the submit path.
class DirectDispatcher final : public InferSubmitter {
 public:
  // Borrows `devices` (non-empty), `allocator` and `clock` (which times
  // requests for the model statistics).
  DirectDispatcher(std::vector<Device*> devices, DeviceAllocator* allocator,
                   Clock* clock = Clock::Real())
      : devices_(std::move(devices)), allocator_(allocator), clock_(clock) {}

  // Runs `request` (already bound) on the next device; completes
  // `responder` exactly once.
  void Submit(InferRequest request, InferResponder* responder) override;

 private:
  const std::vector<Device*> devices_;
  DeviceAllocator* const allocator_;
  Clock* const clock_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace inferd

#endif  // INFERD_CORE_INFER_DIRECT_DISPATCHER_H_
