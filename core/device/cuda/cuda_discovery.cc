// DiscoverCudaDevices and BuiltWithCuda for builds with the CUDA layer.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/device/cuda/cuda_device.h"
#include "core/device/cuda/cuda_status.h"
#include "core/device/discovery.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {

absl::StatusOr<std::vector<std::unique_ptr<Device>>> DiscoverCudaDevices(
    const std::vector<int>& ordinals, int streams_per_device) {
  std::vector<std::unique_ptr<Device>> devices;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    // No GPU or no driver is a normal configuration, not an error: the
    // caller says so in one line. The runtime reports a missing driver as
    // an insufficient one; only a loaded driver that is too old is news.
    std::error_code ec;
    const bool driver_loaded = std::filesystem::exists("/proc/driver/nvidia/version", ec);
    if (err == cudaErrorNoDevice || (err == cudaErrorInsufficientDriver && !driver_loaded)) {
      INFERD_LOG(kDebug, "CUDA: ", cudaGetErrorString(err));
    } else if (err == cudaErrorInsufficientDriver) {
      INFERD_LOG(kWarning, "the loaded NVIDIA driver is older than this build's CUDA runtime "
                           "needs; GPUs are not used");
    } else {
      INFERD_LOG(kWarning, "no usable CUDA device: ", cudaGetErrorString(err), " (",
                 cudaGetErrorName(err), ")");
    }
    return devices;
  }
  if (count == 0) return devices;

  std::vector<int> selected = ordinals;
  if (selected.empty()) {
    for (int i = 0; i < count; ++i) selected.push_back(i);
  }
  for (size_t i = 0; i < selected.size(); ++i) {
    const int ordinal = selected[i];
    if (ordinal < 0 || ordinal >= count) {
      return absl::InvalidArgumentError(absl::StrCat("device.cuda_devices: CUDA device ", ordinal,
                                                     " does not exist (", count,
                                                     " visible, ordinals 0..", count - 1, ")"));
    }
    if (std::find(selected.begin(), selected.begin() + i, ordinal) != selected.begin() + i) {
      return absl::InvalidArgumentError(
          absl::StrCat("device.cuda_devices: CUDA device ", ordinal, " is listed twice"));
    }
  }

  auto nvml = std::make_shared<Nvml>();
  for (size_t i = 0; i < selected.size(); ++i) {
    CudaDeviceOptions options;
    options.index = static_cast<int>(i);
    options.ordinal = selected[i];
    options.num_streams = streams_per_device;
    options.peer_ordinals = selected;
    options.nvml = nvml;
    ASSIGN_OR_RETURN(std::unique_ptr<CudaDevice> device, CudaDevice::Create(options));
    devices.push_back(std::move(device));
  }
  return devices;
}

bool BuiltWithCuda() { return true; }

}  // namespace inferd
