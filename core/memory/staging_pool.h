// StagingPool: cached pinned (page-locked) host buffers through which the
// inference path stages copies between pageable host memory (request and
// response bytes) and a GPU. A copy from pinned memory is truly
// asynchronous; one into pageable memory makes cudaMemcpyAsync return only
// after everything before it on the stream has run, which would hold the
// dispatching thread for the whole model execution.
//
// Blocks come in power-of-two size classes from 4 KiB to max_block_bytes
// and are kept for reuse once freed; the pool never holds more than
// max_total_bytes (in use plus cached). When a request does not fit the
// pool answers null and the caller copies directly, so staging is an
// optimisation that can never fail a request. Blocks go back to the device
// only when the pool is destroyed, so Free makes no driver call and may run
// on a stream callback thread.
#ifndef INFERD_CORE_MEMORY_STAGING_POOL_H_
#define INFERD_CORE_MEMORY_STAGING_POOL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/device/device.h"

namespace inferd {

struct StagingPoolOptions {
  // Largest block handed out; larger requests answer null.
  uint64_t max_block_bytes = 256ull << 20;
  // Bound on the pinned bytes the pool holds, in use and cached.
  uint64_t max_total_bytes = 512ull << 20;
};

// Thread-safe: one mutex per size class, held for a vector push or pop.
// `device` is borrowed and must outlive the pool; blocks must be freed
// before the pool goes.
class StagingPool {
 public:
  StagingPool(Device& device, const StagingPoolOptions& options);
  ~StagingPool();

  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  // Returns a pinned block of at least `bytes` (> 0), or null when the
  // block would pass max_block_bytes, the pool's bound, or the device has
  // no pinned memory to give.
  void* Allocate(uint64_t bytes);
  // Returns a block from Allocate(bytes), with the same `bytes`, once no
  // copy uses it any more.
  void Free(void* ptr, uint64_t bytes);

  // Pinned bytes held (in use and cached).
  uint64_t held_bytes() const { return held_.load(std::memory_order_relaxed); }

 private:
  static constexpr int kMinShift = 12;  // 4 KiB
  static constexpr int kClasses = 40 - kMinShift;

  // The class index for `bytes`, or -1 above max_block_bytes.
  int ClassOf(uint64_t bytes) const;

  struct SizeClass {
    absl::Mutex mu;
    std::vector<void*> free ABSL_GUARDED_BY(mu);
  };

  Device& device_;
  const StagingPoolOptions options_;
  std::atomic<uint64_t> held_{0};
  std::array<SizeClass, kClasses> classes_;
};

}  // namespace inferd

#endif  // INFERD_CORE_MEMORY_STAGING_POOL_H_
