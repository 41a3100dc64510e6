// The plain-CUDA baseline that benchmarks compare the comm engine with:
// cudaMemcpyAsync (or cudaMemcpyPeerAsync) on pinned (or pageable) host memory and raw
// device buffers, one stream, no engine in between.
#ifndef INFERD_CORE_DEVICE_CUDA_CUDA_MEMCPY_BASELINE_H_
#define INFERD_CORE_DEVICE_CUDA_CUDA_MEMCPY_BASELINE_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace inferd {

// The *Pageable kinds copy from/to ordinary (malloc'd, touched) host
// memory, which the CUDA driver stages itself.
enum class MemcpyKind {
  kHostToDevice,
  kDeviceToHost,
  kDeviceToDevice,
  kPeer,
  kHostToDevicePageable,
  kDeviceToHostPageable,
};

// Returns the median wall time, in seconds, of `iters` copies of `bytes`
// (each enqueued with cudaMemcpyAsync and waited for with
// cudaStreamSynchronize) after one warm-up copy, on CUDA device `ordinal`
// (kPeer: from `peer_ordinal` to `ordinal`). Buffers are cudaHostAlloc'd /
// cudaMalloc'd for the call. The CUDA error naming the step on failure.
absl::StatusOr<double> MeasureCudaMemcpy(MemcpyKind kind, int ordinal, int peer_ordinal,
                                         uint64_t bytes, int iters);

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_CUDA_MEMCPY_BASELINE_H_
