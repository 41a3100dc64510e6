#include "core/device/cuda/cuda_memcpy_baseline.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/time/clock.h"
#include "core/device/cuda/cuda_status.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

// Frees whatever the measurement allocated. Not thread-safe.
struct Buffers {
  int ordinal = 0;
  int peer = 0;
  void* host = nullptr;
  bool host_pageable = false;
  void* a = nullptr;  // on `ordinal`
  void* b = nullptr;  // on `ordinal`, or on `peer` for kPeer
  cudaStream_t stream = nullptr;
  ~Buffers() {
    if (stream != nullptr) cudaStreamDestroy(stream);
    if (host != nullptr) host_pageable ? std::free(host) : (void)cudaFreeHost(host);
    if (a != nullptr) cudaFree(a);
    if (b != nullptr) cudaFree(b);
  }
};

}  // namespace

absl::StatusOr<double> MeasureCudaMemcpy(MemcpyKind kind, int ordinal, int peer_ordinal,
                                         uint64_t bytes, int iters) {
  ScopedCudaDevice guard(ordinal);
  RETURN_IF_ERROR(guard.status(ordinal));
  Buffers buf;
  buf.ordinal = ordinal;
  buf.peer = peer_ordinal;
  RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&buf.stream, cudaStreamNonBlocking),
                             "cudaStreamCreate", ordinal));
  RETURN_IF_ERROR(CudaStatus(cudaMalloc(&buf.a, bytes), "cudaMalloc", ordinal));
  switch (kind) {
    case MemcpyKind::kHostToDevice:
    case MemcpyKind::kDeviceToHost:
      RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&buf.host, bytes, cudaHostAllocPortable),
                                 "cudaHostAlloc", ordinal));
      break;
    case MemcpyKind::kHostToDevicePageable:
    case MemcpyKind::kDeviceToHostPageable:
      buf.host = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
      if (buf.host == nullptr) return absl::ResourceExhaustedError("pageable host buffer");
      buf.host_pageable = true;
      std::memset(buf.host, 1, bytes);  // touched: no page faults in the copies
      break;
    case MemcpyKind::kDeviceToDevice:
      RETURN_IF_ERROR(CudaStatus(cudaMalloc(&buf.b, bytes), "cudaMalloc", ordinal));
      break;
    case MemcpyKind::kPeer: {
      ScopedCudaDevice peer(peer_ordinal);
      RETURN_IF_ERROR(peer.status(peer_ordinal));
      RETURN_IF_ERROR(CudaStatus(cudaMalloc(&buf.b, bytes), "cudaMalloc", peer_ordinal));
      break;
    }
  }
  auto copy = [&]() -> absl::Status {
    cudaError_t err = cudaSuccess;
    switch (kind) {
      case MemcpyKind::kHostToDevice:
      case MemcpyKind::kHostToDevicePageable:
        err = cudaMemcpyAsync(buf.a, buf.host, bytes, cudaMemcpyHostToDevice, buf.stream);
        break;
      case MemcpyKind::kDeviceToHost:
      case MemcpyKind::kDeviceToHostPageable:
        err = cudaMemcpyAsync(buf.host, buf.a, bytes, cudaMemcpyDeviceToHost, buf.stream);
        break;
      case MemcpyKind::kDeviceToDevice:
        err = cudaMemcpyAsync(buf.b, buf.a, bytes, cudaMemcpyDeviceToDevice, buf.stream);
        break;
      case MemcpyKind::kPeer:
        err = cudaMemcpyPeerAsync(buf.a, ordinal, buf.b, peer_ordinal, bytes, buf.stream);
        break;
    }
    RETURN_IF_ERROR(CudaStatus(err, "cudaMemcpyAsync", ordinal));
    return CudaStatus(cudaStreamSynchronize(buf.stream), "cudaStreamSynchronize", ordinal);
  };
  RETURN_IF_ERROR(copy());
  std::vector<double> times;
  for (int i = 0; i < std::max(1, iters); ++i) {
    const absl::Time start = absl::Now();
    RETURN_IF_ERROR(copy());
    times.push_back(absl::ToDoubleSeconds(absl::Now() - start));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace inferd
