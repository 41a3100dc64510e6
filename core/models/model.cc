#include "core/models/model.h"

#include <utility>

#include "absl/strings/cord.h"

namespace inferd {
namespace {

// The payload key that marks a model's own error (absl::Status payloads are
// keyed by type URL).
constexpr char kModelErrorUrl[] = "type.inferd.dev/inferd.ModelError";

}  // namespace

absl::Status ModelError(absl::Status status) {
  if (!status.ok()) status.SetPayload(kModelErrorUrl, absl::Cord());
  return status;
}

bool IsModelError(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kModelErrorUrl).has_value();
}

}  // namespace inferd
