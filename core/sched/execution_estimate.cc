#include "core/sched/execution_estimate.h"

#include <algorithm>
#include <utility>

namespace inferd {

ExecutionEstimate::ExecutionEstimate(std::vector<int> sizes)
    : sizes_(std::move(sizes)), ns_(sizes_.size(), 0) {}

void ExecutionEstimate::Learn(int64_t rows, absl::Duration took) {
  auto it = std::lower_bound(sizes_.begin(), sizes_.end(), rows);
  if (it == sizes_.end() || *it != rows) return;
  const int64_t ns = absl::ToInt64Nanoseconds(took);
  if (ns <= 0) return;
  int64_t& avg = ns_[static_cast<size_t>(it - sizes_.begin())];
  // A running average over about the last 8 executions: it follows a
  // change of clocks or of load on the device within a few batches.
  avg = avg == 0 ? ns : avg + (ns - avg) / 8;
}

std::optional<absl::Duration> ExecutionEstimate::For(int64_t rows) const {
  if (rows <= 0) return std::nullopt;
  auto it = std::lower_bound(sizes_.begin(), sizes_.end(), rows);
  if (it == sizes_.end()) return std::nullopt;
  const int64_t ns = ns_[static_cast<size_t>(it - sizes_.begin())];
  if (ns == 0) return std::nullopt;
  return absl::Nanoseconds(ns);
}

}  // namespace inferd
