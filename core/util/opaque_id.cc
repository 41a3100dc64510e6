#include "core/util/opaque_id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/util/check.h"

namespace inferd::opaque_id_internal {
namespace {

// Buffers getrandom(2) output. Thread-safe.
class RandomBuffer {
 public:
  void Next(uint64_t* hi, uint64_t* lo) {
    absl::MutexLock lock(&mu_);
    do {
      if (used_ + 16 > sizeof(buf_)) Refill();
      std::memcpy(hi, buf_ + used_, 8);
      std::memcpy(lo, buf_ + used_ + 8, 8);
      used_ += 16;
    } while (*hi == 0 && *lo == 0);
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

void Random128(uint64_t* hi, uint64_t* lo) {
  static auto* buffer = new RandomBuffer();
  buffer->Next(hi, lo);
}

std::string Format128(uint64_t hi, uint64_t lo) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[static_cast<size_t>(15 - i)] = kHex[(hi >> (4 * i)) & 0xf];
    out[static_cast<size_t>(31 - i)] = kHex[(lo >> (4 * i)) & 0xf];
  }
  return out;
}

absl::Status Parse128(absl::string_view text, absl::string_view field, absl::string_view what,
                      uint64_t* hi, uint64_t* lo) {
  if (text.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": expected a ", what,
                                                   " id of 32 hex digits, got ", text.size(),
                                                   " characters"));
  }
  *hi = *lo = 0;
  for (size_t i = 0; i < 32; ++i) {
    const int v = HexValue(text[i]);
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": ", what, " id has a non-hex character at position ", i));
    }
    uint64_t& half = i < 16 ? *hi : *lo;
    half = (half << 4) | static_cast<uint64_t>(v);
  }
  if (*hi == 0 && *lo == 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", what, " id is zero"));
  }
  return absl::OkStatus();
}

}  // namespace inferd::opaque_id_internal
