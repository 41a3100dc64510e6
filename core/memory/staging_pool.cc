#include "core/memory/staging_pool.h"

#include <algorithm>
#include <bit>

namespace inferd {

StagingPool::StagingPool(Device& device, const StagingPoolOptions& options)
    : device_(device), options_(options) {}

StagingPool::~StagingPool() {
  for (int c = 0; c < kClasses; ++c) {
    SizeClass& sc = classes_[static_cast<size_t>(c)];
    absl::MutexLock lock(&sc.mu);
    for (void* p : sc.free) device_.FreePinnedHost(p);
    sc.free.clear();
  }
}

int StagingPool::ClassOf(uint64_t bytes) const {
  if (bytes == 0 || bytes > options_.max_block_bytes) return -1;
  const uint64_t rounded = std::bit_ceil(std::max<uint64_t>(bytes, uint64_t{1} << kMinShift));
  const int c = std::countr_zero(rounded) - kMinShift;
  return c < kClasses ? c : -1;
}

void* StagingPool::Allocate(uint64_t bytes) {
  const int c = ClassOf(bytes);
  if (c < 0) return nullptr;
  SizeClass& sc = classes_[static_cast<size_t>(c)];
  {
    absl::MutexLock lock(&sc.mu);
    if (!sc.free.empty()) {
      void* p = sc.free.back();
      sc.free.pop_back();
      return p;
    }
  }
  const uint64_t block = uint64_t{1} << (c + kMinShift);
  uint64_t held = held_.load(std::memory_order_relaxed);
  do {
    if (held + block > options_.max_total_bytes) return nullptr;
  } while (!held_.compare_exchange_weak(held, held + block, std::memory_order_relaxed));
  absl::StatusOr<void*> p = device_.AllocatePinnedHost(block);
  if (!p.ok()) {
    held_.fetch_sub(block, std::memory_order_relaxed);
    return nullptr;
  }
  return *p;
}

void StagingPool::Free(void* ptr, uint64_t bytes) {
  if (ptr == nullptr) return;
  const int c = ClassOf(bytes);
  if (c < 0) return;  // not a block of this pool
  SizeClass& sc = classes_[static_cast<size_t>(c)];
  absl::MutexLock lock(&sc.mu);
  sc.free.push_back(ptr);
}

}  // namespace inferd
