#include "core/device/cuda/async_allocator.h"

#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"
#include "core/device/cuda/cuda_device.h"
#include "core/device/cuda/cuda_stream.h"

namespace inferd {
namespace {

class Impl final : public CudaAsyncAllocator {
 public:
  Impl(cudaStream_t stream, cudaMemPool_t pool) : stream_(stream), pool_(pool) {}
  void* Allocate(size_t bytes) override {
    void* p = nullptr;
    if (cudaMallocAsync(&p, bytes, stream_) != cudaSuccess) {
      (void)cudaGetLastError();
      return nullptr;
    }
    return p;
  }
  void Free(void* ptr) override { cudaFreeAsync(ptr, stream_); }
  uint64_t Reserved() override { return Attribute(cudaMemPoolAttrReservedMemCurrent); }
  uint64_t PeakReserved() override { return Attribute(cudaMemPoolAttrReservedMemHigh); }
  uint64_t PeakUsed() override { return Attribute(cudaMemPoolAttrUsedMemHigh); }
  void Synchronize() override { cudaStreamSynchronize(stream_); }

 private:
  uint64_t Attribute(cudaMemPoolAttr attr) {
    uint64_t v = 0;  // cuuint64_t is a 64-bit unsigned
    cudaMemPoolGetAttribute(pool_, attr, &v);
    return v;
  }

  cudaStream_t stream_;
  cudaMemPool_t pool_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CudaAsyncAllocator>> CudaAsyncAllocator::Create(Device& device) {
  auto* cuda = dynamic_cast<CudaDevice*>(&device);
  if (cuda == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", device.index(), " is not a CUDA device"));
  }
  auto* stream = dynamic_cast<CudaStream*>(&device.stream(0));
  if (stream == nullptr) return absl::FailedPreconditionError("stream 0 is not a CUDA stream");
  cudaSetDevice(cuda->ordinal());
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, cuda->ordinal()) != cudaSuccess) {
    (void)cudaGetLastError();
    return absl::FailedPreconditionError(
        absl::StrCat("device ", device.index(), " has no default memory pool"));
  }
  uint64_t threshold = ~uint64_t{0};
  cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
  uint64_t zero = 0;  // resets the high-water marks
  cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &zero);
  cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero);
  return std::unique_ptr<CudaAsyncAllocator>(
      new Impl(stream->cuda_stream(), pool));
}

}  // namespace inferd
