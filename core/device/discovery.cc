#include "core/device/discovery.h"

#include "core/device/host_device.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {

absl::StatusOr<std::vector<std::unique_ptr<Device>>> DiscoverDevices(
    const DiscoveryOptions& options) {
  std::vector<std::unique_ptr<Device>> devices;
  if (options.host_devices == 0) {
    ASSIGN_OR_RETURN(devices,
                     DiscoverCudaDevices(options.cuda_ordinals, options.streams_per_device));
    for (const auto& d : devices) {
      const DeviceInfo& i = d->info();
      INFERD_LOG(kInfo, "device ", i.index, ": cuda:", i.ordinal, " ", i.name, ", ",
                 i.total_memory_bytes >> 20, " MiB, sm_", i.compute_capability_major,
                 i.compute_capability_minor, ", ", i.num_streams, " streams");
    }
    if (!devices.empty()) return devices;
    if (!options.cuda_ordinals.empty()) {
      return absl::InvalidArgumentError(
          "device.cuda_devices: GPUs were requested but no CUDA device is available");
    }
    INFERD_LOG(kInfo, BuiltWithCuda() ? "no GPU found" : "built without CUDA",
               "; using 1 host device");
  }
  const int n = options.host_devices > 0 ? options.host_devices : 1;
  for (int i = 0; i < n; ++i) {
    HostDeviceOptions o;
    o.index = i;
    o.ordinal = i;
    o.capacity_bytes = options.host_capacity_bytes;
    o.num_streams = options.streams_per_device;
    o.inline_when_idle = options.host_inline_when_idle;
    devices.push_back(std::make_unique<HostDevice>(o));
    INFERD_LOG(kInfo, "device ", i, ": host-", i, ", ", options.host_capacity_bytes >> 20,
               " MiB, ", o.num_streams, " streams");
  }
  return devices;
}

}  // namespace inferd
