#include "core/models/model.h"

#include <utility>

#include "absl/strings/cord.h"
#include "core/device/copy_joiner.h"

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

void Model::ExecuteMany(Stream& stream, absl::Span<DeviceCall> calls) const {
  for (DeviceCall& call : calls) {
    call.status = Execute(stream, call.inputs, *call.params, call.outputs);
  }
}

void ExecuteIdentityMany(Stream& stream, absl::Span<DeviceCall> calls) {
  CopyJoiner joiner(stream, &Stream::CopyDeviceToDevice);
  absl::Status st;
  for (DeviceCall& call : calls) {
    if (!st.ok()) break;
    if (call.joinable) {
      st = joiner.Add(call.outputs[0].data, call.inputs[0].data, call.inputs[0].desc->byte_size);
    } else {
      st = joiner.Flush();
      if (st.ok()) {
        st = stream.CopyDeviceToDevice(call.outputs[0].data, call.inputs[0].data,
                                       call.inputs[0].desc->byte_size);
      }
    }
  }
  if (st.ok()) st = joiner.Flush();
  // A joined copy carries several calls: a failure fails them all.
  for (DeviceCall& call : calls) call.status = st;
}

}  // namespace inferd
