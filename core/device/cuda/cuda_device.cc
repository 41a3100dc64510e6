#include "core/device/cuda/cuda_device.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/device/cuda/cuda_kernels.h"
#include "core/device/cuda/cuda_status.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

// Enables peer access from `ordinal` to each of `peers` that supports it and
// returns those that have it. Failures only lose the fast path.
std::vector<int> EnablePeerAccess(int index, int ordinal, const std::vector<int>& peers) {
  std::vector<int> enabled;
  for (int peer : peers) {
    if (peer == ordinal) continue;
    int can = 0;
    if (cudaDeviceCanAccessPeer(&can, ordinal, peer) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    if (!can) continue;
    const cudaError_t err = cudaDeviceEnablePeerAccess(peer, 0);
    if (err == cudaSuccess || err == cudaErrorPeerAccessAlreadyEnabled) {
      (void)cudaGetLastError();
      enabled.push_back(peer);
    } else {
      (void)cudaGetLastError();
      INFERD_LOG(kWarning, CudaStatus(err, absl::StrCat("enable peer access to cuda:", peer),
                                      index).message());
    }
  }
  std::sort(enabled.begin(), enabled.end());
  return enabled;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::Create(const CudaDeviceOptions& options) {
  int count = 0;
  RETURN_IF_ERROR(CudaStatus(cudaGetDeviceCount(&count), "cudaGetDeviceCount", options.index));
  if (options.ordinal < 0 || options.ordinal >= count) {
    return absl::InvalidArgumentError(absl::StrCat("device.cuda_devices: CUDA device ",
                                                   options.ordinal, " does not exist (",
                                                   count, " visible)"));
  }
  ScopedCudaDevice guard(options.ordinal);
  RETURN_IF_ERROR(guard.status(options.index));

  cudaDeviceProp prop{};
  RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&prop, options.ordinal),
                             "cudaGetDeviceProperties", options.index));
  char bus_id[32] = {};
  RETURN_IF_ERROR(CudaStatus(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), options.ordinal),
                             "cudaDeviceGetPCIBusId", options.index));

  DeviceInfo info;
  info.index = options.index;
  info.kind = DeviceKind::kCuda;
  info.name = prop.name;
  info.ordinal = options.ordinal;
  info.total_memory_bytes = prop.totalGlobalMem;
  info.compute_capability_major = prop.major;
  info.compute_capability_minor = prop.minor;
  info.num_streams = std::max(1, options.num_streams);

  std::vector<int> peers = EnablePeerAccess(options.index, options.ordinal, options.peer_ordinals);
  std::unique_ptr<CudaDevice> device(
      new CudaDevice(std::move(info), bus_id, std::move(peers), options.nvml));
  for (int i = 0; i < device->info_.num_streams; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<CudaStream> stream, CudaStream::Create(device.get(), i));
    device->streams_.push_back(std::move(stream));
  }
  return device;
}

CudaDevice::CudaDevice(DeviceInfo info, std::string pci_bus_id, std::vector<int> peers,
                       std::shared_ptr<Nvml> nvml)
    : info_(std::move(info)),
      pci_bus_id_(std::move(pci_bus_id)),
      peers_(std::move(peers)),
      nvml_(std::move(nvml)),
      kernels_(NewCudaKernels()) {}

CudaDevice::~CudaDevice() {
  // Waits for the streams' work and callbacks; errors were reported already.
  (void)Synchronize();
  streams_.clear();
}

absl::StatusOr<MemoryInfo> CudaDevice::GetMemoryInfo() {
  ScopedCudaDevice guard(info_.ordinal);
  RETURN_IF_ERROR(guard.status(info_.index));
  size_t free_bytes = 0, total_bytes = 0;
  RETURN_IF_ERROR(
      CudaStatus(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo", info_.index));
  return MemoryInfo{total_bytes, free_bytes};
}

absl::StatusOr<double> CudaDevice::GetUtilization() {
  if (nvml_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("device ", info_.index, ": no NVML to read utilization from"));
  }
  return nvml_->GetUtilization(pci_bus_id_);
}

absl::StatusOr<double> CudaDevice::GetPowerWatts() {
  if (nvml_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("device ", info_.index, ": no NVML to read power from"));
  }
  return nvml_->GetPowerWatts(pci_bus_id_);
}

absl::StatusOr<double> CudaDevice::GetEnergyJoules() {
  if (nvml_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("device ", info_.index, ": no NVML to read energy from"));
  }
  return nvml_->GetEnergyJoules(pci_bus_id_);
}

absl::StatusOr<void*> CudaDevice::AllocateRaw(size_t bytes) {
  ScopedCudaDevice guard(info_.ordinal);
  RETURN_IF_ERROR(guard.status(info_.index));
  void* ptr = nullptr;
  const cudaError_t err = cudaMalloc(&ptr, bytes == 0 ? 1 : bytes);
  if (err == cudaSuccess) return ptr;
  (void)cudaGetLastError();  // an allocation failure is not sticky: clear it
  if (err == cudaErrorMemoryAllocation) {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) (void)cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat(
        "device ", info_.index, " (", info_.name, "): cannot allocate ", bytes, " bytes, ",
        free_bytes, " of ", total_bytes, " bytes free"));
  }
  if (IsStickyCudaError(err)) OnStickyError(CudaStatus(err, "cudaMalloc", info_.index));
  return CudaStatus(err, "cudaMalloc", info_.index);
}

void CudaDevice::FreeRaw(void* ptr) {
  if (ptr == nullptr) return;
  ScopedCudaDevice guard(info_.ordinal);
  const cudaError_t err = cudaFree(ptr);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    INFERD_LOG(kError, CudaStatus(err, "cudaFree", info_.index).message());
  }
}

absl::StatusOr<void*> CudaDevice::AllocatePinnedHost(size_t bytes) {
  ScopedCudaDevice guard(info_.ordinal);
  RETURN_IF_ERROR(guard.status(info_.index));
  void* ptr = nullptr;
  const cudaError_t err = cudaHostAlloc(&ptr, bytes == 0 ? 1 : bytes, cudaHostAllocPortable);
  if (err == cudaSuccess) return ptr;
  (void)cudaGetLastError();
  if (err == cudaErrorMemoryAllocation) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "device ", info_.index, ": cannot allocate ", bytes, " bytes of pinned host memory"));
  }
  return CudaStatus(err, "cudaHostAlloc", info_.index);
}

void CudaDevice::FreePinnedHost(void* ptr) {
  if (ptr == nullptr) return;
  ScopedCudaDevice guard(info_.ordinal);
  const cudaError_t err = cudaFreeHost(ptr);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    INFERD_LOG(kError, CudaStatus(err, "cudaFreeHost", info_.index).message());
  }
}

Stream& CudaDevice::stream(int i) {
  return *streams_[static_cast<size_t>(i) % streams_.size()];
}

std::unique_ptr<Event> CudaDevice::CreateEvent() { return std::make_unique<CudaEvent>(); }

bool CudaDevice::CanAccessPeer(const Device& other) const {
  if (other.info().kind != DeviceKind::kCuda) return false;
  const int ordinal = other.info().ordinal;
  return ordinal == info_.ordinal || std::binary_search(peers_.begin(), peers_.end(), ordinal);
}

absl::Status CudaDevice::Synchronize() {
  absl::Status first;
  for (auto& s : streams_) {
    absl::Status st = s->Synchronize();
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

namespace {

class CudaImportedMemory final : public ImportedMemory {
 public:
  CudaImportedMemory(void* ptr, int ordinal) : ptr_(ptr), ordinal_(ordinal) {}
  ~CudaImportedMemory() override {
    ScopedCudaDevice guard(ordinal_);
    cudaError_t err = cudaIpcCloseMemHandle(ptr_);
    if (err != cudaSuccess) {
      INFERD_LOG(kWarning, CudaStatus(err, "cudaIpcCloseMemHandle", ordinal_).ToString());
    }
  }
  void* data() const override { return ptr_; }

 private:
  void* const ptr_;
  const int ordinal_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ImportedMemory>> CudaDevice::OpenIpcMemory(
    absl::string_view handle, uint64_t byte_size) {
  static_assert(sizeof(cudaIpcMemHandle_t) == kIpcHandleBytes);
  if (handle.size() != sizeof(cudaIpcMemHandle_t)) {
    return absl::InvalidArgumentError(absl::StrCat("raw_handle: ", handle.size(),
                                                   " bytes; a cudaIpcMemHandle_t has ",
                                                   sizeof(cudaIpcMemHandle_t)));
  }
  cudaIpcMemHandle_t ipc{};
  std::memcpy(&ipc, handle.data(), sizeof(ipc));
  ScopedCudaDevice guard(info_.ordinal);
  void* ptr = nullptr;
  cudaError_t err = cudaIpcOpenMemHandle(&ptr, ipc, cudaIpcMemLazyEnablePeerAccess);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: clear it
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_handle: cannot be opened on cuda:", info_.ordinal, " (", cudaGetErrorName(err),
        "); it must come from cudaIpcGetMemHandle in another process on this GPU"));
  }
  // The exporter's allocation may be smaller than byte_size: CUDA does not
  // say, so the region's size is the client's word, as with Triton.
  (void)byte_size;
  return std::unique_ptr<ImportedMemory>(new CudaImportedMemory(ptr, info_.ordinal));
}

void CudaDevice::OnStickyError(const absl::Status& error) {
  for (auto& s : streams_) s->OnAsyncError(error, /*sticky=*/true);
}

}  // namespace inferd
