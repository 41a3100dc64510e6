// ParallelCopy: a memcpy split over a few threads. One thread copying from
// pageable memory into pinned staging buffers (or out of them) moves far
// less than the host's memory bandwidth; the staged host<->device pipeline
// would run at that one thread's speed. Large copies are cut into equal
// parts: the caller copies one, helper threads (started once) the rest, and
// Copy returns when all are done. Copies below `min_parallel_bytes` are a
// plain memcpy on the caller. Gather does the same for many pieces (e.g. a
// batch's requests into one pinned block): the pieces' bytes, taken in
// order, are cut into equal parts however the pieces fall.
#ifndef INFERD_CORE_UTIL_PARALLEL_COPY_H_
#define INFERD_CORE_UTIL_PARALLEL_COPY_H_

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/types/span.h"
#include "absl/synchronization/mutex.h"

namespace inferd {

// Thread-safe: concurrent Copy calls take turns on the helpers (they share
// the same memory bandwidth either way).
class ParallelCopy {
 public:
  // `threads` >= 1 in all (the caller included); 1: always a plain memcpy.
  explicit ParallelCopy(int threads, size_t min_parallel_bytes = 1 << 20);
  ~ParallelCopy();
  ParallelCopy(const ParallelCopy&) = delete;
  ParallelCopy& operator=(const ParallelCopy&) = delete;

  struct Piece {
    void* dst;
    const void* src;
    size_t n;
  };

  void Copy(void* dst, const void* src, size_t n);
  // Copies every piece; pieces must not overlap one another's destination.
  void Gather(absl::Span<const Piece> pieces);

  int threads() const { return static_cast<int>(helpers_.size()) + 1; }

 private:
  void Helper(int index);
  // Copies bytes [begin, end) of the pieces taken in order.
  static void CopyRange(absl::Span<const Piece> pieces, size_t begin, size_t end);

  const size_t min_parallel_bytes_;
  absl::Mutex turn_;  // one Copy at a time uses the helpers
  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(turn_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Span<const Piece> pieces_ ABSL_GUARDED_BY(mu_);
  size_t part_ ABSL_GUARDED_BY(mu_) = 0;  // bytes per part; the last takes the rest
  size_t n_ ABSL_GUARDED_BY(mu_) = 0;  // bytes of all pieces
  std::vector<std::thread> helpers_;
};

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_PARALLEL_COPY_H_
