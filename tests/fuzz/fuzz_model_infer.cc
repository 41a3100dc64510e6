// KServe ModelInfer request conversion: a wire ModelInferRequest (binary
// protobuf) decoded against the builtin models (identity, add, scale), as
// ModelInfer and ModelStreamInfer do before anything runs.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/config/config.h"
#include "core/models/model.h"
#include "core/models/model_registry.h"
#include "server/infer_call.h"
#include "tests/fuzz/quiet_protobuf.h"

namespace {

const inferd::ModelRegistry& Registry() {
  static const inferd::ModelRegistry* registry = [] {
    auto* r = new inferd::ModelRegistry();
    for (auto& m : inferd::BuiltinModels()) r->Add(m);
    return r;
  }();
  return *registry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) return 0;
  inferd::LimitsConfig limits;
  limits.max_tensor_bytes = 1 << 20;  // keep one run's allocations small
  inferd::InferRequest request;
  inferd::DecodedCall call;
  (void)inferd::DecodeInferRequest(wire, Registry(), limits, nullptr, &request, &call);
  return 0;
}
