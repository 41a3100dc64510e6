// Nvml: GPU utilization, board power and energy from NVIDIA's management
// library, loaded with dlopen at first use (never linked), so the daemon
// starts where the driver ships no libnvidia-ml. Declares the few NVML types
// it needs itself. Power and energy are optional: a library (or GPU) without
// them answers UNAVAILABLE for those alone.
#ifndef INFERD_CORE_DEVICE_CUDA_NVML_H_
#define INFERD_CORE_DEVICE_CUDA_NVML_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace inferd {

// One loaded NVML library, shared by the CUDA devices of a process.
// Thread-safe. Shuts NVML down and unloads it on destruction.
class Nvml {
 public:
  // `library` is the file dlopen loads; tests pass a missing one.
  explicit Nvml(std::string library = "libnvidia-ml.so.1");
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // Returns the busy fraction (0..1) over NVML's last sample period of the
  // GPU at `pci_bus_id` (as cudaDeviceGetPCIBusId writes it). Loads NVML on
  // the first call. UNAVAILABLE when the library, a symbol, the GPU or the
  // counter is missing; the message says which.
  absl::StatusOr<double> GetUtilization(const std::string& pci_bus_id);
  // Board power draw in watts (nvmlDeviceGetPowerUsage). UNAVAILABLE as
  // above, or when the library or the GPU has no power reading.
  absl::StatusOr<double> GetPowerWatts(const std::string& pci_bus_id);
  // Energy used since the driver was loaded, in joules
  // (nvmlDeviceGetTotalEnergyConsumption, Volta and later). UNAVAILABLE as
  // above, or when the library or the GPU has no energy counter.
  absl::StatusOr<double> GetEnergyJoules(const std::string& pci_bus_id);

 private:
  struct Api;  // resolved entry points

  // Loads and initializes NVML once; returns the outcome of that attempt.
  absl::Status EnsureLoaded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The loaded API and the NVML handle of the GPU at `pci_bus_id`; `what`
  // names the reading in errors.
  absl::Status Lookup(const std::string& pci_bus_id, const char* what, Api** api, void** device);

  // Constant after construction.
  const std::string library_;

  absl::Mutex mu_;
  bool tried_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status load_status_ ABSL_GUARDED_BY(mu_);
  void* dl_handle_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Entry points; set once under mu_, then read-only.
  Api* api_ ABSL_GUARDED_BY(mu_) = nullptr;
  // NVML device handles by PCI bus id.
  absl::flat_hash_map<std::string, void*> devices_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_NVML_H_
