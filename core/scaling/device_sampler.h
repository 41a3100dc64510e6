// Device sampling for the dynamic scaler: reads each device's busy fraction
// and used-memory fraction through the Device interface, as the scaler's
// DeviceSampler hook (called before each evaluation, no thread of its own).
#ifndef INFERD_CORE_SCALING_DEVICE_SAMPLER_H_
#define INFERD_CORE_SCALING_DEVICE_SAMPLER_H_

#include <vector>

#include "core/device/device.h"
#include "core/scaling/dynamic_scaler.h"
#include "core/scaling/scaling_stats.h"

namespace inferd {

// Returns one sample per device that reports both figures now: utilization
// from GetUtilization (clamped to [0, 1]) and memory_used = 1 - free / total
// from GetMemoryInfo. A device whose driver offers no utilization counter
// (no NVML) or reports zero total memory is skipped, not reported as idle.
// Thread-safe as the devices are.
std::vector<DeviceSample> SampleDeviceLoad(const std::vector<Device*>& devices);

// Returns a DeviceSampler over `devices` (borrowed: they must outlive every
// call, i.e. the scaler's evaluations).
DeviceSampler DeviceLoadSampler(std::vector<Device*> devices);

}  // namespace inferd

#endif  // INFERD_CORE_SCALING_DEVICE_SAMPLER_H_
