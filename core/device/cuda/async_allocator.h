// CudaAsyncAllocator: cudaMallocAsync / cudaFreeAsync on a device's default
// memory pool with the release threshold at its maximum — the stream-ordered
// allocator CUDA ships, used as a baseline by benchmarks (tests/bench) and
// nowhere in the daemon itself.
#ifndef INFERD_CORE_DEVICE_CUDA_ASYNC_ALLOCATOR_H_
#define INFERD_CORE_DEVICE_CUDA_ASYNC_ALLOCATOR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "core/device/device.h"

namespace inferd {

// Not thread-safe: the thread that created it drives it (the device stays
// current on it).
class CudaAsyncAllocator {
 public:
  // FAILED_PRECONDITION when `device` is not a CUDA device or has no pools.
  static absl::StatusOr<std::unique_ptr<CudaAsyncAllocator>> Create(Device& device);
  virtual ~CudaAsyncAllocator() = default;

  // Returns null on failure.
  virtual void* Allocate(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
  // Bytes the pool holds from the driver now.
  virtual uint64_t Reserved() = 0;
  // High-water marks since Create: bytes held from the driver and bytes
  // handed out (cudaMemPoolAttrReservedMemHigh / UsedMemHigh).
  virtual uint64_t PeakReserved() = 0;
  virtual uint64_t PeakUsed() = 0;
  // Waits for the stream.
  virtual void Synchronize() = 0;
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_ASYNC_ALLOCATOR_H_
