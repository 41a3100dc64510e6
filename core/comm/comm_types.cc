#include "core/comm/comm_types.h"

#include "absl/strings/str_cat.h"

namespace inferd {

std::string EndpointName(int endpoint) {
  return endpoint == kHostEndpoint ? std::string("host") : absl::StrCat(endpoint);
}

std::string LinkName(int src, int dst) {
  return absl::StrCat(EndpointName(src), "->", EndpointName(dst));
}

const char* LinkKindName(LinkKind k) {
  switch (k) {
    case LinkKind::kHostToDevice:
      return "h2d";
    case LinkKind::kDeviceToHost:
      return "d2h";
    case LinkKind::kLocal:
      return "local";
    case LinkKind::kPeer:
      return "peer";
    case LinkKind::kStaged:
      return "staged";
  }
  return "unknown";
}

}  // namespace inferd
