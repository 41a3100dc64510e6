#include "core/comm/link_calibration.h"

#include <algorithm>

#include "absl/functional/function_ref.h"
#include "absl/time/clock.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

// Memory of one device (or pinned host memory of it) for the calibration
// copies. Not thread-safe.
class Buffer {
 public:
  static absl::StatusOr<Buffer> OnDevice(Device& d, uint64_t bytes) {
    ASSIGN_OR_RETURN(void* p, d.AllocateRaw(bytes));
    return Buffer(&d, p, false);
  }
  static absl::StatusOr<Buffer> PinnedHost(Device& d, uint64_t bytes) {
    ASSIGN_OR_RETURN(void* p, d.AllocatePinnedHost(bytes));
    return Buffer(&d, p, true);
  }
  Buffer(Buffer&& o) noexcept : device_(o.device_), ptr_(o.ptr_), pinned_(o.pinned_) {
    o.ptr_ = nullptr;
  }
  Buffer& operator=(Buffer&&) = delete;
  ~Buffer() {
    if (ptr_ == nullptr) return;
    if (pinned_) {
      device_->FreePinnedHost(ptr_);
    } else {
      device_->FreeRaw(ptr_);
    }
  }
  void* get() const { return ptr_; }

 private:
  Buffer(Device* d, void* p, bool pinned) : device_(d), ptr_(p), pinned_(pinned) {}
  Device* device_;
  void* ptr_;
  bool pinned_;
};

// Returns bytes per second of the best of three runs of `copy` after one
// warm-up run.
absl::StatusOr<double> Measure(Stream& stream, uint64_t bytes,
                               absl::FunctionRef<absl::Status()> copy) {
  double best = 0;
  for (int i = 0; i < 4; ++i) {
    const absl::Time start = absl::Now();
    RETURN_IF_ERROR(copy());
    RETURN_IF_ERROR(stream.Synchronize());
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (i > 0 && seconds > 0) best = std::max(best, static_cast<double>(bytes) / seconds);
  }
  return best;
}

}  // namespace

absl::StatusOr<LinkPeaks> MeasureLinkPeaks(const std::vector<Device*>& devices, uint64_t bytes,
                                           int stream_index) {
  LinkPeaks peaks;
  peaks.measured = true;
  if (devices.empty() || bytes == 0) return peaks;
  Device& d0 = *devices[0];
  Stream& s0 = d0.stream(stream_index % d0.num_streams());
  ASSIGN_OR_RETURN(Buffer host, Buffer::PinnedHost(d0, bytes));
  ASSIGN_OR_RETURN(Buffer a, Buffer::OnDevice(d0, bytes));
  ASSIGN_OR_RETURN(Buffer b, Buffer::OnDevice(d0, bytes));
  ASSIGN_OR_RETURN(peaks[LinkKind::kHostToDevice], Measure(s0, bytes, [&] {
                     return s0.CopyHostToDevice(a.get(), host.get(), bytes);
                   }));
  ASSIGN_OR_RETURN(peaks[LinkKind::kDeviceToHost], Measure(s0, bytes, [&] {
                     return s0.CopyDeviceToHost(host.get(), a.get(), bytes);
                   }));
  ASSIGN_OR_RETURN(peaks[LinkKind::kLocal], Measure(s0, bytes, [&] {
                     return s0.CopyDeviceToDevice(b.get(), a.get(), bytes);
                   }));
  bool staged = false;
  for (Device* src : devices) {
    for (Device* dst : devices) {
      if (src == dst) continue;
      if (!dst->CanAccessPeer(*src)) {
        staged = true;
        continue;
      }
      if (peaks[LinkKind::kPeer] > 0) continue;
      Stream& sd = dst->stream(stream_index % dst->num_streams());
      ASSIGN_OR_RETURN(Buffer from, Buffer::OnDevice(*src, bytes));
      ASSIGN_OR_RETURN(Buffer to, Buffer::OnDevice(*dst, bytes));
      ASSIGN_OR_RETURN(peaks[LinkKind::kPeer], Measure(sd, bytes, [&] {
                         return sd.CopyFromPeer(to.get(), *src, from.get(), bytes);
                       }));
    }
  }
  if (staged) {
    peaks[LinkKind::kStaged] =
        std::min(peaks[LinkKind::kHostToDevice], peaks[LinkKind::kDeviceToHost]);
  }
  INFERD_LOG(kInfo, "comm calibration (", bytes >> 20, " MiB copies): h2d ",
             peaks[LinkKind::kHostToDevice] / 1e9, " GB/s, d2h ",
             peaks[LinkKind::kDeviceToHost] / 1e9, " GB/s, local ", peaks[LinkKind::kLocal] / 1e9,
             " GB/s, peer ", peaks[LinkKind::kPeer] / 1e9, " GB/s, staged ",
             peaks[LinkKind::kStaged] / 1e9, " GB/s");
  return peaks;
}

}  // namespace inferd
