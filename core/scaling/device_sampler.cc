#include "core/scaling/device_sampler.h"

#include <algorithm>
#include <utility>

namespace inferd {

std::vector<DeviceSample> SampleDeviceLoad(const std::vector<Device*>& devices) {
  std::vector<DeviceSample> samples;
  samples.reserve(devices.size());
  for (Device* device : devices) {
    absl::StatusOr<double> utilization = device->GetUtilization();
    absl::StatusOr<MemoryInfo> memory = device->GetMemoryInfo();
    if (!utilization.ok() || !memory.ok() || memory->total_bytes == 0) continue;
    const uint64_t free_bytes = std::min(memory->free_bytes, memory->total_bytes);
    DeviceSample sample;
    sample.device = device->index();
    sample.utilization = std::clamp(*utilization, 0.0, 1.0);
    sample.memory_used =
        1.0 - static_cast<double>(free_bytes) / static_cast<double>(memory->total_bytes);
    samples.push_back(sample);
  }
  return samples;
}

DeviceSampler DeviceLoadSampler(std::vector<Device*> devices) {
  return [devices = std::move(devices)] { return SampleDeviceLoad(devices); };
}

}  // namespace inferd
