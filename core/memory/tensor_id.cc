#include "core/memory/tensor_id.h"

#include <cerrno>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/util/check.h"
#include <sys/random.h>

namespace inferd {
namespace {

// Buffers getrandom(2) output so an id costs no system call most times.
class RandomBuffer {
 public:
  TensorId Next() {
    absl::MutexLock lock(&mu_);
    while (true) {
      if (used_ + 16 > sizeof(buf_)) Refill();
      TensorId id;
      std::memcpy(&id.hi, buf_ + used_, 8);
      std::memcpy(&id.lo, buf_ + used_ + 8, 8);
      used_ += 16;
      if (id.valid()) return id;
    }
  }

 private:
  void Refill() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t got = 0;
    while (got < sizeof(buf_)) {
      const ssize_t n = getrandom(buf_ + got, sizeof(buf_) - got, 0);
      if (n < 0 && errno == EINTR) continue;
      INFERD_CHECK(n > 0);
      got += static_cast<size_t>(n);
    }
    used_ = 0;
  }

  absl::Mutex mu_;
  unsigned char buf_[4096] ABSL_GUARDED_BY(mu_);
  size_t used_ ABSL_GUARDED_BY(mu_) = sizeof(buf_);
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

TensorId NewTensorId() {
  static auto* buffer = new RandomBuffer();
  return buffer->Next();
}

std::string FormatTensorId(const TensorId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[static_cast<size_t>(15 - i)] = kHex[(id.hi >> (4 * i)) & 0xf];
    out[static_cast<size_t>(31 - i)] = kHex[(id.lo >> (4 * i)) & 0xf];
  }
  return out;
}

absl::StatusOr<TensorId> ParseTensorId(absl::string_view text, absl::string_view field) {
  if (text.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be 32 hex digits, got ", text.size(), " characters"));
  }
  TensorId id;
  for (size_t i = 0; i < 32; ++i) {
    const int v = HexValue(text[i]);
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must be 32 hex digits, got a non-hex character at ", i));
    }
    uint64_t& half = i < 16 ? id.hi : id.lo;
    half = (half << 4) | static_cast<uint64_t>(v);
  }
  if (!id.valid()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must not be all zeros"));
  }
  return id;
}

}  // namespace inferd
