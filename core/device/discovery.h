// Device discovery: builds the daemon's device list from config — the CUDA
// GPUs that are present (none is not an error), or host devices.
#ifndef INFERD_CORE_DEVICE_DISCOVERY_H_
#define INFERD_CORE_DEVICE_DISCOVERY_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/device/device.h"

namespace inferd {

struct DiscoveryOptions {
  // N > 0: N host devices, no GPU probing. 0: GPUs when present, else one
  // host device.
  int host_devices = 0;
  uint64_t host_capacity_bytes = 2048ull << 20;
  std::vector<int> cuda_ordinals;  // empty = all visible GPUs
  int streams_per_device = 4;
  bool host_inline_when_idle = true;
};

// Returns the devices, indexed 0..N-1 in order. Logs what it found.
// INVALID_ARGUMENT when a requested CUDA ordinal does not exist.
absl::StatusOr<std::vector<std::unique_ptr<Device>>> DiscoverDevices(
    const DiscoveryOptions& options);

// Implemented in core/device/cuda/ (or by a stub in builds without CUDA):
// the CUDA devices for `ordinals` (all when empty), indexed from 0. An empty
// list when there is no driver or no GPU.
absl::StatusOr<std::vector<std::unique_ptr<Device>>> DiscoverCudaDevices(
    const std::vector<int>& ordinals, int streams_per_device);

// True when this build includes the CUDA device layer.
bool BuiltWithCuda();

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_DISCOVERY_H_
