// Built instead of the CUDA device layer when INFERD_WITH_CUDA is OFF.
#include "core/device/discovery.h"

namespace inferd {

absl::StatusOr<std::vector<std::unique_ptr<Device>>> DiscoverCudaDevices(
    const std::vector<int>& ordinals, int streams_per_device) {
  return std::vector<std::unique_ptr<Device>>{};
}

bool BuiltWithCuda() { return false; }

}  // namespace inferd
