#include "core/util/parallel_copy.h"

#include <algorithm>
#include <cstring>

namespace inferd {
namespace {

// Parts start on 4 KiB boundaries so that no two threads write one page.
constexpr size_t kAlign = 4096;

}  // namespace

ParallelCopy::ParallelCopy(int threads, size_t min_parallel_bytes)
    : min_parallel_bytes_(std::max<size_t>(min_parallel_bytes, kAlign)) {
  for (int i = 1; i < std::max(1, threads); ++i) helpers_.emplace_back([this, i] { Helper(i); });
}

ParallelCopy::~ParallelCopy() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (auto& t : helpers_) t.join();
}

void ParallelCopy::Copy(void* dst, const void* src, size_t n) {
  const Piece piece{dst, src, n};
  Gather(absl::MakeConstSpan(&piece, 1));
}

void ParallelCopy::CopyRange(absl::Span<const Piece> pieces, size_t begin, size_t end) {
  size_t offset = 0;  // of the current piece in the whole
  for (const Piece& p : pieces) {
    if (offset >= end) return;
    const size_t from = std::max(begin, offset);
    const size_t to = std::min(end, offset + p.n);
    if (to > from) {
      std::memcpy(static_cast<char*>(p.dst) + (from - offset),
                  static_cast<const char*>(p.src) + (from - offset), to - from);
    }
    offset += p.n;
  }
}

void ParallelCopy::Gather(absl::Span<const Piece> pieces) {
  size_t n = 0;
  for (const Piece& p : pieces) n += p.n;
  if (helpers_.empty() || n < min_parallel_bytes_) {
    for (const Piece& p : pieces) {
      if (p.n > 0) std::memcpy(p.dst, p.src, p.n);
    }
    return;
  }
  absl::MutexLock turn(&turn_);
  const size_t parts = helpers_.size() + 1;
  size_t part = (n / parts + kAlign - 1) / kAlign * kAlign;
  {
    absl::MutexLock lock(&mu_);
    pieces_ = pieces;
    part_ = part;
    n_ = n;
    pending_ = static_cast<int>(helpers_.size());
    ++generation_;
  }
  CopyRange(pieces, 0, std::min(part, n));  // part 0: the caller's
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
  mu_.Await(absl::Condition(&done));
}

void ParallelCopy::Helper(int index) {
  uint64_t seen = 0;
  while (true) {
    absl::Span<const Piece> pieces;
    size_t begin, end;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || generation_ != seen;
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      seen = generation_;
      pieces = pieces_;
      begin = std::min(part_ * static_cast<size_t>(index), n_);
      end = index == static_cast<int>(helpers_.size()) ? n_ : std::min(begin + part_, n_);
    }
    if (end > begin) CopyRange(pieces, begin, end);
    absl::MutexLock lock(&mu_);
    --pending_;
  }
}

}  // namespace inferd
