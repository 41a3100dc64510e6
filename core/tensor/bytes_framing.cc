#include "core/tensor/bytes_framing.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace inferd {

absl::Status BytesFramingChecker::Feed(absl::Span<const uint8_t> data) {
  if (!error_.ok()) return error_;
  if (data.size() > total_ - consumed_) {
    error_ = absl::InvalidArgumentError(absl::StrCat("BYTES data runs past the tensor's ", total_,
                                                     " bytes"));
    return error_;
  }
  size_t at = 0;
  while (at < data.size()) {
    if (payload_left_ > 0) {
      const uint64_t skip = std::min<uint64_t>(payload_left_, data.size() - at);
      payload_left_ -= skip;
      at += skip;
      continue;
    }
    header_[header_have_++] = data[at++];
    if (header_have_ < 4) continue;
    header_have_ = 0;
    const uint64_t len = uint64_t{header_[0]} | uint64_t{header_[1]} << 8 |
                         uint64_t{header_[2]} << 16 | uint64_t{header_[3]} << 24;
    if (count_ == elements_) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat("BYTES data holds more than the ", elements_, " elements of its shape"));
      return error_;
    }
    const uint64_t left = total_ - (consumed_ + at);
    if (len > left) {
      error_ = absl::InvalidArgumentError(absl::StrCat("BYTES element ", count_, " is ", len,
                                                       " bytes long but only ", left,
                                                       " bytes of the tensor remain"));
      return error_;
    }
    ++count_;
    payload_left_ = len;
  }
  consumed_ += data.size();
  return absl::OkStatus();
}

absl::Status BytesFramingChecker::Finish() const {
  if (!error_.ok()) return error_;
  if (consumed_ != total_) {
    return absl::InvalidArgumentError(
        absl::StrCat("BYTES data: ", consumed_, " of ", total_, " bytes written"));
  }
  if (header_have_ != 0 || count_ != elements_) {
    return absl::InvalidArgumentError(absl::StrCat("BYTES data holds ", count_,
                                                   header_have_ != 0 ? " elements and a cut length"
                                                                     : " elements",
                                                   "; its shape needs ", elements_));
  }
  return absl::OkStatus();
}

absl::Status CheckBytesFraming(absl::Span<const uint8_t> data, uint64_t elements) {
  BytesFramingChecker checker(data.size(), elements);
  if (absl::Status st = checker.Feed(data); !st.ok()) return st;
  return checker.Finish();
}

}  // namespace inferd
