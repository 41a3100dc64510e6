#include "core/infer/direct_dispatcher.h"

#include <utility>

#include "core/infer/device_execution.h"

namespace inferd {

void DirectDispatcher::Submit(InferRequest request, InferResponder* responder) {
  const uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
  Device& device = *devices_[n % devices_.size()];
  Stream& stream = device.stream(static_cast<int>((n / devices_.size()) % device.num_streams()));
  ExecuteOnDevice(std::move(request), stream, *allocator_, responder);
}

}  // namespace inferd
