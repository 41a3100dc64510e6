#include "core/memory/bytes_layout_guard.h"

#include "absl/strings/str_cat.h"

namespace inferd {

void BytesLayoutGuard::Track(const TensorId& id, uint64_t total_bytes, uint64_t elements) {
  absl::MutexLock lock(&mu_);
  checkers_.insert_or_assign(id, BytesFramingChecker(total_bytes, elements));
}

absl::StatusOr<bool> BytesLayoutGuard::CheckWrite(const TensorId& id, uint64_t offset,
                                                  absl::Span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  auto it = checkers_.find(id);
  if (it == checkers_.end()) return false;
  BytesFramingChecker& checker = it->second;
  if (offset != checker.consumed()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offset: a BYTES tensor is written in order; the next write starts at byte ",
        checker.consumed(), ", not ", offset));
  }
  if (absl::Status st = checker.Feed(data); !st.ok()) return st;
  if (!checker.complete()) return false;
  if (absl::Status st = checker.Finish(); !st.ok()) return st;
  return true;
}

void BytesLayoutGuard::Forget(const TensorId& id) {
  absl::MutexLock lock(&mu_);
  checkers_.erase(id);
}

absl::Status BytesLayoutGuard::CheckUsable(const TensorId& id) const {
  absl::MutexLock lock(&mu_);
  auto it = checkers_.find(id);
  if (it == checkers_.end()) return absl::OkStatus();
  const BytesFramingChecker& checker = it->second;
  absl::Status layout = checker.Finish();
  return absl::FailedPreconditionError(absl::StrCat(
      "tensor ", FormatTensorId(id), " is a BYTES tensor whose data is not complete and valid (",
      layout.message(), "); upload all of it first"));
}

size_t BytesLayoutGuard::tracked() const {
  absl::MutexLock lock(&mu_);
  return checkers_.size();
}

}  // namespace inferd
