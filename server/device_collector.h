// DeviceCollector: Prometheus collectable that reads each device's memory,
// utilization, and where NVML has them GPU power and energy, at scrape time
// (no sampling thread), plus the build info series. A reading a device lacks
// is left out, and a family no device has is not served.
#ifndef INFERD_SERVER_DEVICE_COLLECTOR_H_
#define INFERD_SERVER_DEVICE_COLLECTOR_H_

#include <vector>

#include "core/device/device.h"
#include "prometheus/collectable.h"

namespace inferd {

// Thread-safe (Collect only reads devices through their thread-safe API).
class DeviceCollector final : public prometheus::Collectable {
 public:
  // Borrows `devices`, which must outlive the collector's registration.
  DeviceCollector(std::vector<Device*> devices, bool built_with_cuda);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::vector<Device*> devices_;
  const bool built_with_cuda_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_DEVICE_COLLECTOR_H_
