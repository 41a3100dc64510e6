#include "core/comm/parallel_copy.h"

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
  if (helpers_.empty() || n < min_parallel_bytes_) {
    std::memcpy(dst, src, n);
    return;
  }
  absl::MutexLock turn(&turn_);
  const size_t parts = helpers_.size() + 1;
  size_t part = (n / parts + kAlign - 1) / kAlign * kAlign;
  {
    absl::MutexLock lock(&mu_);
    dst_ = static_cast<char*>(dst);
    src_ = static_cast<const char*>(src);
    part_ = part;
    n_ = n;
    pending_ = static_cast<int>(helpers_.size());
    ++generation_;
  }
  std::memcpy(dst, src, std::min(part, n));  // part 0: the caller's
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
  mu_.Await(absl::Condition(&done));
}

void ParallelCopy::Helper(int index) {
  uint64_t seen = 0;
  while (true) {
    char* dst;
    const char* src;
    size_t begin, end;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || generation_ != seen;
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      seen = generation_;
      dst = dst_;
      src = src_;
      begin = std::min(part_ * static_cast<size_t>(index), n_);
      end = index == static_cast<int>(helpers_.size()) ? n_ : std::min(begin + part_, n_);
    }
    if (end > begin) std::memcpy(dst + begin, src + begin, end - begin);
    absl::MutexLock lock(&mu_);
    --pending_;
  }
}

}  // namespace inferd
