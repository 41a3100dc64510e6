// CudaDevice: one CUDA GPU as an inferd::Device, over the CUDA runtime API.
// Owns a pool of non-blocking streams, allocates with cudaMalloc /
// cudaHostAlloc, reads memory with cudaMemGetInfo and utilization through
// NVML, and enables peer access to the other GPUs where the hardware can.
// Every call makes the device current for its duration, so callers may use
// any thread and any current device.
#ifndef INFERD_CORE_DEVICE_CUDA_CUDA_DEVICE_H_
#define INFERD_CORE_DEVICE_CUDA_CUDA_DEVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/device/cuda/cuda_stream.h"
#include "core/device/cuda/nvml.h"
#include "core/device/device.h"

namespace inferd {

struct CudaDeviceOptions {
  int index = 0;        // daemon-wide device index
  int ordinal = 0;      // CUDA device ordinal
  int num_streams = 4;  // at least 1
  // Other CUDA ordinals in use: peer access to each is enabled where
  // cudaDeviceCanAccessPeer allows it.
  std::vector<int> peer_ordinals;
  // Shared NVML loader; null makes GetUtilization UNAVAILABLE.
  std::shared_ptr<Nvml> nvml;
};

// Thread-safe. Streams, kernels and the NVML loader live as long as the
// device. Destroy it only when no other thread uses it: the destructor waits
// for its streams, then releases them.
class CudaDevice final : public Device {
 public:
  // Creates the device: reads its properties, creates its streams and
  // enables peer access. INVALID_ARGUMENT for a bad ordinal, or the CUDA
  // error of the step that failed.
  static absl::StatusOr<std::unique_ptr<CudaDevice>> Create(const CudaDeviceOptions& options);
  ~CudaDevice() override;

  // inferd::Device
  const DeviceInfo& info() const override { return info_; }
  absl::StatusOr<MemoryInfo> GetMemoryInfo() override;
  // NVML's GPU busy percentage / 100; UNAVAILABLE without NVML.
  absl::StatusOr<double> GetUtilization() override;
  // NVML's power and energy readings; UNAVAILABLE without them.
  absl::StatusOr<double> GetPowerWatts() override;
  absl::StatusOr<double> GetEnergyJoules() override;
  // cudaMalloc; RESOURCE_EXHAUSTED naming the device, the requested and the
  // free bytes when the GPU is full (the CUDA error state is cleared).
  absl::StatusOr<void*> AllocateRaw(size_t bytes) override;
  void FreeRaw(void* ptr) override;
  // cudaHostAlloc (portable: pinned for every GPU).
  absl::StatusOr<void*> AllocatePinnedHost(size_t bytes) override;
  void FreePinnedHost(void* ptr) override;
  int num_streams() const override { return static_cast<int>(streams_.size()); }
  Stream& stream(int i) override;
  // Returns a CudaEvent; its CUDA event is created at the first record.
  std::unique_ptr<Event> CreateEvent() override;
  Kernels& kernels() override { return *kernels_; }
  // True for this device itself and for GPUs with peer access enabled.
  bool CanAccessPeer(const Device& other) const override;
  absl::Status Synchronize() override;
  // cudaIpcOpenMemHandle (lazy peer access); closed with
  // cudaIpcCloseMemHandle when the ImportedMemory is destroyed.
  absl::StatusOr<std::unique_ptr<ImportedMemory>> OpenIpcMemory(absl::string_view handle,
                                                              uint64_t byte_size) override;

  int ordinal() const { return info_.ordinal; }
  const std::string& pci_bus_id() const { return pci_bus_id_; }

  // Reports a sticky error (the context is unusable) to every stream, so
  // their pending callbacks receive it.
  void OnStickyError(const absl::Status& error);

 private:
  CudaDevice(DeviceInfo info, std::string pci_bus_id, std::vector<int> peers,
             std::shared_ptr<Nvml> nvml);

  // Constant after construction.
  DeviceInfo info_;
  const std::string pci_bus_id_;
  const std::vector<int> peers_;  // ordinals with peer access enabled
  const std::shared_ptr<Nvml> nvml_;
  std::unique_ptr<Kernels> kernels_;
  std::vector<std::unique_ptr<CudaStream>> streams_;
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_CUDA_DEVICE_H_
