#include "core/sched/memory_tensor_access.h"

#include <utility>

#include "core/util/logging.h"

namespace inferd {
namespace {

TensorDesc DescOf(const TensorInfo& info) {
  TensorDesc desc;
  desc.dtype = info.dtype;
  desc.shape.assign(info.shape.begin(), info.shape.end());
  desc.byte_size = info.byte_size;
  return desc;
}

}  // namespace

absl::StatusOr<StoredTensor> MemoryTensorAccess::Describe(absl::string_view handle) {
  absl::StatusOr<TensorId> id = ParseTensorId(handle, "tensor_id");
  if (!id.ok()) return id.status();
  absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
  if (!info.ok()) return info.status();
  if (absl::Status usable = engine_->CheckUsable(*id); !usable.ok()) return usable;
  return StoredTensor{info->device, DescOf(*info)};
}

absl::StatusOr<AccessedTensor> MemoryTensorAccess::PinId(const TensorId& id) {
  absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(id);
  if (!info.ok()) return info.status();
  absl::StatusOr<TensorPin> pin = engine_->Pin(id);
  if (!pin.ok()) return pin.status();
  AccessedTensor out;
  out.device = pin->device();
  out.data = pin->device_ptr();
  out.desc = DescOf(*info);
  absl::MutexLock lock(&mu_);
  out.token = next_token_++;
  pins_.emplace(out.token, *std::move(pin));
  return out;
}

absl::StatusOr<AccessedTensor> MemoryTensorAccess::Pin(absl::string_view handle) {
  absl::StatusOr<TensorId> id = ParseTensorId(handle, "tensor_id");
  if (!id.ok()) return id.status();
  return PinId(*id);
}

absl::StatusOr<AccessedTensor> MemoryTensorAccess::CreateOutput(int device, const TensorDesc& desc,
                                                                absl::string_view owner,
                                                                std::string* handle) {
  TensorRequest request;
  request.device = device;
  request.dtype = desc.dtype;
  request.shape.assign(desc.shape.begin(), desc.shape.end());
  request.byte_size = desc.byte_size;
  request.owner = std::string(owner);
  request.layout_checked = true;  // a model's output
  absl::StatusOr<TensorInfo> info = engine_->AllocateTensor(request);
  if (!info.ok()) return info.status();
  absl::StatusOr<AccessedTensor> pinned = PinId(info->id);
  if (!pinned.ok()) {
    (void)engine_->FreeTensor(info->id);
    return pinned.status();
  }
  *handle = FormatTensorId(info->id);
  return pinned;
}

void MemoryTensorAccess::Release(const AccessedTensor& tensor) {
  TensorPin pin;
  {
    absl::MutexLock lock(&mu_);
    auto it = pins_.find(tensor.token);
    if (it == pins_.end()) return;
    pin = std::move(it->second);
    pins_.erase(it);
  }
  // `pin` unpins here, outside the lock.
}

void MemoryTensorAccess::Free(absl::string_view handle) {
  absl::StatusOr<TensorId> id = ParseTensorId(handle, "tensor_id");
  if (!id.ok()) return;
  if (absl::Status st = engine_->FreeTensor(*id); !st.ok()) {
    INFERD_LOG(kWarning, "scheduler: could not free output tensor ", handle, ": ", st.ToString());
  }
}

}  // namespace inferd
