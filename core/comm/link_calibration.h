// Link calibration: a short copy per link kind at start-up, so that the
// bandwidth limiter knows each kind's peak and stats can show it.
#ifndef INFERD_CORE_COMM_LINK_CALIBRATION_H_
#define INFERD_CORE_COMM_LINK_CALIBRATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/comm/comm_types.h"
#include "core/device/device.h"

namespace inferd {

// Measures the kinds present among `devices` with copies of `bytes` on
// stream `stream_index` (modulo the stream count), best of three after a
// warm-up: h2d and d2h between pinned host memory and the first device,
// local within it, peer between the first pair with peer access. The staged
// kind (no peer access) moves through both host copies, pipelined, so its
// peak is taken as min(h2d, d2h). Real time; takes a few copies' worth.
// Returns the device error of a failed allocation or copy.
absl::StatusOr<LinkPeaks> MeasureLinkPeaks(const std::vector<Device*>& devices, uint64_t bytes,
                                           int stream_index);

}  // namespace inferd

#endif  // INFERD_CORE_COMM_LINK_CALIBRATION_H_
