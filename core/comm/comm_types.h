// Plain types shared by the communication engine's parts: transfer
// priorities, endpoints and link kinds, and per-kind link peaks.
#ifndef INFERD_CORE_COMM_COMM_TYPES_H_
#define INFERD_CORE_COMM_COMM_TYPES_H_

#include <array>
#include <cstdint>
#include <string>

#include "core/memory/tensor_id.h"
#include "core/util/priority.h"

namespace inferd {

// A transfer's id: an opaque random 128-bit handle, formatted like a tensor
// id (32 hex digits), so that ids cannot be guessed.
using TransferId = TensorId;

// Scheduling levels of transfers: the one Priority of inferd.
using TransferPriority = Priority;
inline constexpr int kNumTransferPriorities = kNumPriorities;

// The host (client bytes) as a transfer endpoint; devices are 0..N-1.
inline constexpr int kHostEndpoint = -1;

// "host" or the device index.
std::string EndpointName(int endpoint);
// "<src>-><dst>", e.g. "host->0", "0->1": the `link` label of metrics.
std::string LinkName(int src, int dst);

// How bytes move over a link (an ordered pair of endpoints).
enum class LinkKind : uint8_t {
  kHostToDevice = 0,  // host bytes into a device
  kDeviceToHost = 1,  // device bytes out to the host
  kLocal = 2,         // within one device
  kPeer = 3,          // device to device with peer access
  kStaged = 4,        // device to device through pinned host buffers
};
inline constexpr int kNumLinkKinds = 5;

// "h2d", "d2h", "local", "peer", "staged".
const char* LinkKindName(LinkKind k);

// Peak bandwidth per link kind, in bytes per second (0: unknown, so the
// bandwidth limiter leaves that kind alone).
struct LinkPeaks {
  std::array<double, kNumLinkKinds> bytes_per_second{};
  // True when measured by calibration, false when given.
  bool measured = false;

  double& operator[](LinkKind k) { return bytes_per_second[static_cast<int>(k)]; }
  double operator[](LinkKind k) const { return bytes_per_second[static_cast<int>(k)]; }
};

}  // namespace inferd

#endif  // INFERD_CORE_COMM_COMM_TYPES_H_
