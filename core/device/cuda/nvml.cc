#include "core/device/cuda/nvml.h"

#include <dlfcn.h>

#include <memory>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/logging.h"

namespace inferd {
namespace {

// The NVML ABI pieces used here (from NVIDIA's public nvml.h).
using nvmlReturn_t = int;
constexpr nvmlReturn_t kNvmlSuccess = 0;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;
struct nvmlUtilization_t {
  unsigned int gpu;     // percent of time a kernel was running
  unsigned int memory;  // percent of time device memory was read or written
};

}  // namespace

struct Nvml::Api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*handle_by_pci_bus_id)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  // Optional: null when the library lacks them.
  nvmlReturn_t (*power_usage)(nvmlDevice_t, unsigned int*) = nullptr;            // milliwatts
  nvmlReturn_t (*total_energy)(nvmlDevice_t, unsigned long long*) = nullptr;     // millijoules
};

Nvml::Nvml(std::string library) : library_(std::move(library)) {}

Nvml::~Nvml() {
  absl::MutexLock lock(&mu_);
  if (api_ != nullptr && load_status_.ok()) api_->shutdown();
  delete api_;
  if (dl_handle_ != nullptr) dlclose(dl_handle_);
}

absl::Status Nvml::EnsureLoaded() {
  if (tried_) return load_status_;
  tried_ = true;
  dl_handle_ = dlopen(library_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl_handle_ == nullptr) {
    const char* why = dlerror();
    load_status_ = absl::UnavailableError(
        absl::StrCat("GPU utilization: NVML not available (", library_, ": ",
                     why != nullptr ? why : "dlopen failed", ")"));
    INFERD_LOG(kInfo, load_status_.message());
    return load_status_;
  }
  auto api = std::make_unique<Api>();
  void* const handle = dl_handle_;
  auto resolve = [handle](const char* name, auto* fn) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(handle, name));
    return *fn != nullptr;
  };
  const char* missing = nullptr;
  if (!resolve("nvmlInit_v2", &api->init)) missing = "nvmlInit_v2";
  else if (!resolve("nvmlShutdown", &api->shutdown)) missing = "nvmlShutdown";
  else if (!resolve("nvmlDeviceGetHandleByPciBusId_v2", &api->handle_by_pci_bus_id))
    missing = "nvmlDeviceGetHandleByPciBusId_v2";
  else if (!resolve("nvmlDeviceGetUtilizationRates", &api->utilization))
    missing = "nvmlDeviceGetUtilizationRates";
  resolve("nvmlErrorString", &api->error_string);  // optional
  resolve("nvmlDeviceGetPowerUsage", &api->power_usage);
  resolve("nvmlDeviceGetTotalEnergyConsumption", &api->total_energy);
  if (missing != nullptr) {
    load_status_ = absl::UnavailableError(
        absl::StrCat("GPU utilization: ", library_, " lacks ", missing));
    return load_status_;
  }
  const nvmlReturn_t rc = api->init();
  if (rc != kNvmlSuccess) {
    load_status_ = absl::UnavailableError(absl::StrCat(
        "GPU utilization: nvmlInit_v2 failed: ",
        api->error_string != nullptr ? api->error_string(rc) : "", " (", rc, ")"));
    INFERD_LOG(kInfo, load_status_.message());
    return load_status_;
  }
  api_ = api.release();
  load_status_ = absl::OkStatus();
  return load_status_;
}

absl::Status Nvml::Lookup(const std::string& pci_bus_id, const char* what, Api** api,
                          void** device) {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = EnsureLoaded(); !st.ok()) return st;
  *api = api_;
  auto it = devices_.find(pci_bus_id);
  if (it != devices_.end()) {
    *device = it->second;
    return absl::OkStatus();
  }
  nvmlDevice_t handle = nullptr;
  const nvmlReturn_t rc = api_->handle_by_pci_bus_id(pci_bus_id.c_str(), &handle);
  if (rc != kNvmlSuccess) {
    return absl::UnavailableError(absl::StrCat(
        what, ": NVML does not know the GPU at PCI bus id ", pci_bus_id, ": ",
        api_->error_string != nullptr ? api_->error_string(rc) : "", " (", rc, ")"));
  }
  devices_.emplace(pci_bus_id, handle);
  *device = handle;
  return absl::OkStatus();
}

absl::StatusOr<double> Nvml::GetUtilization(const std::string& pci_bus_id) {
  Api* api = nullptr;
  void* device = nullptr;
  if (absl::Status st = Lookup(pci_bus_id, "GPU utilization", &api, &device); !st.ok()) return st;
  nvmlUtilization_t utilization{};
  const nvmlReturn_t rc = api->utilization(static_cast<nvmlDevice_t>(device), &utilization);
  if (rc != kNvmlSuccess) {
    return absl::UnavailableError(absl::StrCat(
        "GPU utilization of ", pci_bus_id, ": nvmlDeviceGetUtilizationRates failed: ",
        api->error_string != nullptr ? api->error_string(rc) : "", " (", rc, ")"));
  }
  const double busy = utilization.gpu / 100.0;
  return busy > 1.0 ? 1.0 : busy;
}

absl::StatusOr<double> Nvml::GetPowerWatts(const std::string& pci_bus_id) {
  Api* api = nullptr;
  void* device = nullptr;
  if (absl::Status st = Lookup(pci_bus_id, "GPU power", &api, &device); !st.ok()) return st;
  if (api->power_usage == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("GPU power: ", library_, " lacks nvmlDeviceGetPowerUsage"));
  }
  unsigned int milliwatts = 0;
  const nvmlReturn_t rc = api->power_usage(static_cast<nvmlDevice_t>(device), &milliwatts);
  if (rc != kNvmlSuccess) {
    return absl::UnavailableError(absl::StrCat(
        "GPU power of ", pci_bus_id, ": nvmlDeviceGetPowerUsage failed: ",
        api->error_string != nullptr ? api->error_string(rc) : "", " (", rc, ")"));
  }
  return static_cast<double>(milliwatts) / 1e3;
}

absl::StatusOr<double> Nvml::GetEnergyJoules(const std::string& pci_bus_id) {
  Api* api = nullptr;
  void* device = nullptr;
  if (absl::Status st = Lookup(pci_bus_id, "GPU energy", &api, &device); !st.ok()) return st;
  if (api->total_energy == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("GPU energy: ", library_, " lacks nvmlDeviceGetTotalEnergyConsumption"));
  }
  unsigned long long millijoules = 0;  // NOLINT(runtime/int): NVML's type
  const nvmlReturn_t rc = api->total_energy(static_cast<nvmlDevice_t>(device), &millijoules);
  if (rc != kNvmlSuccess) {
    return absl::UnavailableError(absl::StrCat(
        "GPU energy of ", pci_bus_id, ": nvmlDeviceGetTotalEnergyConsumption failed: ",
        api->error_string != nullptr ? api->error_string(rc) : "", " (", rc, ")"));
  }
  return static_cast<double>(millijoules) / 1e3;
}

}  // namespace inferd
