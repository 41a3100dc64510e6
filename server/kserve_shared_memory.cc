// KServeService's six shared-memory RPCs (system and CUDA regions), over
// the SharedMemoryRegistry (core/shm/shared_memory_registry.h).
#include "absl/strings/str_cat.h"
#include "server/kserve_service.h"
#include "server/server_call.h"

namespace inferd {

absl::Status KServeService::CheckSharedMemory(bool registering) const {
  if (shm_ == nullptr) {
    return absl::FailedPreconditionError("shared memory is not available in this daemon");
  }
  if (registering && !options_.shared_memory_allowed) {
    return absl::PermissionDeniedError(
        "shared-memory registration is refused: the daemon listens beyond loopback and a region "
        "is memory of its own machine (set shared_memory.allow_non_loopback for same-host "
        "clients)");
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* KServeService::SystemSharedMemoryStatus(
    grpc::CallbackServerContext* ctx, const inference::SystemSharedMemoryStatusRequest* req,
    inference::SystemSharedMemoryStatusResponse* resp) {
  UnaryCall call(ctx, m_shm_status_);
  if (absl::Status st = CheckSharedMemory(false); !st.ok()) return call.Finish(st);
  absl::StatusOr<std::vector<RegionInfo>> regions = shm_->Status(RegionKind::kSystem, req->name());
  if (!regions.ok()) return call.Finish(regions.status());
  for (const RegionInfo& r : *regions) {
    auto& out = (*resp->mutable_regions())[r.name];
    out.set_name(r.name);
    out.set_key(r.key);
    out.set_offset(r.offset);
    out.set_byte_size(r.byte_size);
  }
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::SystemSharedMemoryRegister(
    grpc::CallbackServerContext* ctx, const inference::SystemSharedMemoryRegisterRequest* req,
    inference::SystemSharedMemoryRegisterResponse*) {
  UnaryCall call(ctx, m_shm_register_);
  absl::Status st = CheckSharedMemory(true);
  if (st.ok()) st = shm_->RegisterSystem(req->name(), req->key(), req->offset(), req->byte_size());
  return call.Finish(st);
}

grpc::ServerUnaryReactor* KServeService::SystemSharedMemoryUnregister(
    grpc::CallbackServerContext* ctx, const inference::SystemSharedMemoryUnregisterRequest* req,
    inference::SystemSharedMemoryUnregisterResponse*) {
  UnaryCall call(ctx, m_shm_unregister_);
  absl::Status st = CheckSharedMemory(false);
  if (st.ok()) st = shm_->Unregister(RegionKind::kSystem, req->name());
  return call.Finish(st);
}

grpc::ServerUnaryReactor* KServeService::CudaSharedMemoryStatus(
    grpc::CallbackServerContext* ctx, const inference::CudaSharedMemoryStatusRequest* req,
    inference::CudaSharedMemoryStatusResponse* resp) {
  UnaryCall call(ctx, m_cuda_shm_status_);
  if (absl::Status st = CheckSharedMemory(false); !st.ok()) return call.Finish(st);
  absl::StatusOr<std::vector<RegionInfo>> regions = shm_->Status(RegionKind::kCuda, req->name());
  if (!regions.ok()) return call.Finish(regions.status());
  for (const RegionInfo& r : *regions) {
    auto& out = (*resp->mutable_regions())[r.name];
    out.set_name(r.name);
    out.set_device_id(static_cast<uint64_t>(r.device_id));
    out.set_byte_size(r.byte_size);
  }
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::CudaSharedMemoryRegister(
    grpc::CallbackServerContext* ctx, const inference::CudaSharedMemoryRegisterRequest* req,
    inference::CudaSharedMemoryRegisterResponse*) {
  UnaryCall call(ctx, m_cuda_shm_register_);
  absl::Status st = CheckSharedMemory(true);
  if (st.ok()) {
    st = shm_->RegisterCuda(req->name(), req->raw_handle(), req->device_id(), req->byte_size());
  }
  return call.Finish(st);
}

grpc::ServerUnaryReactor* KServeService::CudaSharedMemoryUnregister(
    grpc::CallbackServerContext* ctx, const inference::CudaSharedMemoryUnregisterRequest* req,
    inference::CudaSharedMemoryUnregisterResponse*) {
  UnaryCall call(ctx, m_cuda_shm_unregister_);
  absl::Status st = CheckSharedMemory(false);
  if (st.ok()) st = shm_->Unregister(RegionKind::kCuda, req->name());
  return call.Finish(st);
}

}  // namespace inferd
