#include "server/memory_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/echo.h"
#include "server/status_util.h"
#include "server/tensor_proto.h"
#include "server/token_auth.h"

namespace inferd {
namespace {

constexpr char kService[] = "inferd.v1.Memory/";
constexpr uint32_t kDefaultChunk = 1u << 20;
constexpr uint32_t kMaxChunk = 4u << 20;

absl::StatusOr<TensorId> ParseId(const std::string& text) { return ParseTensorId(text, "tensor_id"); }

absl::Duration LeaseFrom(double seconds) {
  return seconds > 0 ? absl::Seconds(seconds) : absl::ZeroDuration();
}

// One client-streaming upload: header, then chunks written in order.
class UploadReactor final : public grpc::ServerReadReactor<v1::UploadTensorRequest> {
 public:
  UploadReactor(MemoryEngine* engine, v1::TensorInfo* resp, MethodMetrics* m,
                std::optional<Caller> caller)
      : engine_(engine), resp_(resp), m_(m), caller_(std::move(caller)), start_(absl::Now()) {
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // client finished writing (or the call broke)
      if (!id_.valid()) return Fail(absl::InvalidArgumentError("header: the stream sent no header"));
      if (written_ != info_.byte_size) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "chunk: the stream sent ", written_, " of ", info_.byte_size, " bytes")));
      }
      absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(id_);
      if (!info.ok()) return Fail(info.status());
      TensorInfoToProto(*info, resp_);
      return Done(absl::OkStatus());
    }
    absl::Status st = Handle();
    if (!st.ok()) return Fail(std::move(st));
    StartRead(&req_);
  }

  void OnCancel() override {}  // OnDone frees a partial tensor.

  void OnDone() override {
    if (id_.valid() && !succeeded_) (void)engine_->FreeTensor(id_);
    delete this;
  }

 private:
  absl::Status Handle() {
    if (req_.has_header()) {
      if (id_.valid()) return absl::InvalidArgumentError("header: sent twice");
      absl::StatusOr<TensorRequest> tr = TensorRequestFromProto(req_.header(), "header");
      if (!tr.ok()) return tr.status();
      absl::StatusOr<std::string> owner =
          OwnerFor(caller_, tr->owner, "UploadTensor", "header.owner");
      if (!owner.ok()) return owner.status();
      tr->owner = *std::move(owner);
      absl::StatusOr<TensorInfo> info = engine_->AllocateTensor(*tr);
      if (!info.ok()) return info.status();
      info_ = *std::move(info);
      id_ = info_.id;
      return absl::OkStatus();
    }
    if (!id_.valid()) return absl::InvalidArgumentError("header: must be the first message");
    const std::string& chunk = req_.chunk();
    if (chunk.size() > info_.byte_size - written_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk: ", written_ + chunk.size(), " bytes sent, the tensor holds ", info_.byte_size));
    }
    absl::Status st = engine_->WriteTensor(
        id_, written_,
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()));
    if (st.ok()) written_ += chunk.size();
    return st;
  }

  void Fail(absl::Status st) { Done(std::move(st)); }
  void Done(absl::Status st) {
    succeeded_ = st.ok();
    grpc::Status gs = ToGrpcStatus(st);
    m_->Record(gs.error_code(), absl::Now() - start_);
    Finish(gs);
  }

  MemoryEngine* const engine_;
  v1::TensorInfo* const resp_;
  MethodMetrics* const m_;
  const std::optional<Caller> caller_;  // with server.auth
  const absl::Time start_;
  v1::UploadTensorRequest req_;
  TensorInfo info_;
  TensorId id_;
  uint64_t written_ = 0;
  bool succeeded_ = false;
};

// One server-streaming download: reads a chunk, writes it, repeats.
class DownloadReactor final : public grpc::ServerWriteReactor<v1::DownloadTensorResponse> {
 public:
  DownloadReactor(MemoryEngine* engine, const v1::DownloadTensorRequest* req, MethodMetrics* m)
      : engine_(engine), m_(m), start_(absl::Now()) {
    chunk_ = req->chunk_bytes() == 0 ? kDefaultChunk : std::min(req->chunk_bytes(), kMaxChunk);
    absl::StatusOr<TensorId> id = ParseId(req->tensor_id());
    if (!id.ok()) {
      Done(id.status());
      return;
    }
    id_ = *id;
    absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(id_);
    if (!info.ok()) {
      Done(info.status());
      return;
    }
    size_ = info->byte_size;
    TensorInfoToProto(*info, resp_.mutable_info());
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Done(absl::CancelledError("client went away"));
    resp_.clear_info();
    if (offset_ >= size_) return Done(absl::OkStatus());
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    const uint64_t n = std::min<uint64_t>(chunk_, size_ - offset_);
    std::string* buf = resp_.mutable_chunk();
    buf->resize(n);
    absl::Status st = engine_->ReadTensor(
        id_, offset_, absl::MakeSpan(reinterpret_cast<uint8_t*>(buf->data()), n));
    if (!st.ok()) return Done(std::move(st));
    resp_.set_offset(offset_);
    offset_ += n;
    if (n == 0) offset_ = size_;  // an empty tensor: one message with the info
    StartWrite(&resp_);
  }
  void Done(absl::Status st) {
    grpc::Status gs = ToGrpcStatus(st);
    m_->Record(gs.error_code(), absl::Now() - start_);
    Finish(gs);
  }

  MemoryEngine* const engine_;
  MethodMetrics* const m_;
  const absl::Time start_;
  TensorId id_;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  uint32_t chunk_ = kDefaultChunk;
  v1::DownloadTensorResponse resp_;
};

}  // namespace

absl::StatusOr<TensorRequest> TensorRequestFromProto(const v1::AllocateTensorRequest& req,
                                                     const std::string& field) {
  TensorRequest tr;
  if (req.has_device()) {
    if (req.device() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".device: ", req.device(), " is negative (omit it for any device)"));
    }
    tr.device = req.device();
  }
  std::optional<DataType> dtype = ParseDataType(req.datatype());
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".datatype: unsupported datatype ", Echo(req.datatype())));
  }
  tr.dtype = *dtype;
  tr.shape.assign(req.shape().begin(), req.shape().end());
  tr.byte_size = req.byte_size();
  tr.owner = req.owner();
  if (req.lease_seconds() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".lease_seconds: ", req.lease_seconds(),
                                                   " is negative"));
  }
  tr.lease = LeaseFrom(req.lease_seconds());
  return tr;
}

void MemoryStatsToProto(const std::vector<DeviceMemoryStats>& stats, v1::MemoryStats* out) {
  for (const DeviceMemoryStats& s : stats) {
    v1::DeviceMemoryStats* d = out->add_devices();
    d->set_device(s.device);
    d->set_total_bytes(s.total_bytes);
    d->set_reserved_bytes(s.reserved_bytes);
    d->set_allocated_bytes(s.allocated_bytes);
    d->set_free_bytes(s.free_bytes);
    d->set_largest_free_block_bytes(s.largest_free_block);
    d->set_fragmentation(s.fragmentation);
    d->set_overhead_ratio(s.overhead_ratio);
    d->set_active_tensors(s.active_tensors);
    d->set_tensor_bytes(s.tensor_bytes);
    d->set_pinned_tensors(s.pinned_tensors);
    d->set_segments(s.segments);
    d->set_allocations(s.allocations);
    d->set_frees(s.frees);
    d->set_gc_runs(s.gc_runs);
    d->set_gc_reclaimed_bytes(s.gc_reclaimed_bytes);
    d->set_compactions(s.compactions);
    d->set_compaction_moved_bytes(s.compaction_moved_bytes);
    d->set_lease_expirations(s.lease_expirations);
  }
}

MemoryService::MemoryService(MemoryEngine* engine, GrpcMetrics* metrics)
    : engine_(engine) {
  auto m = [&](const char* name) { return metrics->ForMethod(absl::StrCat(kService, name)); };
  m_allocate_ = m("AllocateTensor");
  m_upload_ = m("UploadTensor");
  m_download_ = m("DownloadTensor");
  m_free_ = m("FreeTensor");
  m_renew_ = m("RenewLease");
  m_get_ = m("GetTensor");
  m_list_ = m("ListTensors");
  m_batch_ = m("GetOptimalBatchSize");
  m_stats_ = m("GetMemoryStats");
  m_compact_ = m("Compact");
}

grpc::ServerUnaryReactor* MemoryService::AllocateTensor(grpc::CallbackServerContext* ctx,
                                                        const v1::AllocateTensorRequest* req,
                                                        v1::TensorInfo* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TensorRequest> tr = TensorRequestFromProto(*req, "request");
  if (!tr.ok()) return FinishUnary(ctx, m_allocate_, tr.status(), start);
  absl::StatusOr<std::string> owner = OwnerFor(CallerOf(*ctx), tr->owner, "AllocateTensor", "owner");
  if (!owner.ok()) return FinishUnary(ctx, m_allocate_, owner.status(), start);
  tr->owner = *std::move(owner);
  absl::StatusOr<TensorInfo> info = engine_->AllocateTensor(*tr);
  if (info.ok()) TensorInfoToProto(*info, resp);
  return FinishUnary(ctx, m_allocate_, info.status(), start);
}

grpc::ServerReadReactor<v1::UploadTensorRequest>* MemoryService::UploadTensor(
    grpc::CallbackServerContext* ctx, v1::TensorInfo* resp) {
  return new UploadReactor(engine_, resp, m_upload_, CallerOf(*ctx));
}

grpc::ServerWriteReactor<v1::DownloadTensorResponse>* MemoryService::DownloadTensor(
    grpc::CallbackServerContext* ctx, const v1::DownloadTensorRequest* req) {
  return new DownloadReactor(engine_, req, m_download_);
}

grpc::ServerUnaryReactor* MemoryService::FreeTensor(grpc::CallbackServerContext* ctx,
                                                    const v1::FreeTensorRequest* req,
                                                    v1::FreeTensorResponse*) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TensorId> id = ParseId(req->tensor_id());
  if (!id.ok()) return FinishUnary(ctx, m_free_, id.status(), start);
  // With server.auth, another caller's tensor needs role admin.
  if (std::optional<Caller> caller = CallerOf(*ctx); caller.has_value()) {
    absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
    if (!info.ok()) return FinishUnary(ctx, m_free_, info.status(), start);
    absl::Status allowed = CheckOwner(caller, info->owner, "FreeTensor",
                                      absl::StrCat("tensor ", req->tensor_id()));
    if (!allowed.ok()) return FinishUnary(ctx, m_free_, allowed, start);
  }
  return FinishUnary(ctx, m_free_, engine_->FreeTensor(*id), start);
}

grpc::ServerUnaryReactor* MemoryService::RenewLease(grpc::CallbackServerContext* ctx,
                                                    const v1::RenewLeaseRequest* req,
                                                    v1::TensorInfo* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TensorId> id = ParseId(req->tensor_id());
  if (!id.ok()) return FinishUnary(ctx, m_renew_, id.status(), start);
  if (req->lease_seconds() < 0) {
    return FinishUnary(ctx, m_renew_,
                       absl::InvalidArgumentError(absl::StrCat(
                           "lease_seconds: ", req->lease_seconds(), " is negative")),
                       start);
  }
  absl::StatusOr<absl::Time> until = engine_->RenewLease(*id, LeaseFrom(req->lease_seconds()));
  if (!until.ok()) return FinishUnary(ctx, m_renew_, until.status(), start);
  absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
  if (info.ok()) TensorInfoToProto(*info, resp);
  return FinishUnary(ctx, m_renew_, info.status(), start);
}

grpc::ServerUnaryReactor* MemoryService::GetTensor(grpc::CallbackServerContext* ctx,
                                                   const v1::GetTensorRequest* req,
                                                   v1::TensorInfo* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<TensorId> id = ParseId(req->tensor_id());
  if (!id.ok()) return FinishUnary(ctx, m_get_, id.status(), start);
  absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
  if (info.ok()) TensorInfoToProto(*info, resp);
  return FinishUnary(ctx, m_get_, info.status(), start);
}

grpc::ServerUnaryReactor* MemoryService::ListTensors(grpc::CallbackServerContext* ctx,
                                                     const v1::ListTensorsRequest* req,
                                                     v1::ListTensorsResponse* resp) {
  const absl::Time start = absl::Now();
  TensorListOptions o;
  o.owner = req->owner();
  o.device = req->has_device() ? req->device() : -1;
  if (req->page_size() < 0 || req->page_size() > 1000) {
    return FinishUnary(ctx, m_list_,
                       absl::InvalidArgumentError(absl::StrCat(
                           "page_size: ", req->page_size(), " is outside [0, 1000]")),
                       start);
  }
  o.page_size = req->page_size();
  o.page_token = req->page_token();
  absl::StatusOr<TensorPage> page = engine_->ListTensors(o);
  if (page.ok()) {
    for (const TensorInfo& t : page->tensors) TensorInfoToProto(t, resp->add_tensors());
    resp->set_next_page_token(page->next_page_token);
  }
  return FinishUnary(ctx, m_list_, page.status(), start);
}

grpc::ServerUnaryReactor* MemoryService::GetOptimalBatchSize(
    grpc::CallbackServerContext* ctx, const v1::GetOptimalBatchSizeRequest* req,
    v1::GetOptimalBatchSizeResponse* resp) {
  const absl::Time start = absl::Now();
  BatchSizeRequest b;
  b.device = req->device();
  b.model_size_mb = req->model_size_mb();
  b.input_shape.assign(req->input_shape().begin(), req->input_shape().end());
  std::optional<DataType> dtype = ParseDataType(req->datatype().empty() ? "FP32" : req->datatype());
  if (!dtype) {
    return FinishUnary(ctx, m_batch_,
                       absl::InvalidArgumentError(absl::StrCat(
                           "datatype: unsupported datatype ", Echo(req->datatype()))),
                       start);
  }
  b.dtype = *dtype;
  b.output_bytes_per_sample = req->output_bytes_per_sample();
  b.activation_bytes_per_sample = req->activation_bytes_per_sample();
  b.max_batch_size = req->max_batch_size();
  absl::StatusOr<int64_t> n = engine_->GetOptimalBatchSize(b);
  if (n.ok()) resp->set_batch_size(*n);
  return FinishUnary(ctx, m_batch_, n.status(), start);
}

grpc::ServerUnaryReactor* MemoryService::GetMemoryStats(grpc::CallbackServerContext* ctx,
                                                        const v1::GetMemoryStatsRequest*,
                                                        v1::MemoryStats* resp) {
  const absl::Time start = absl::Now();
  MemoryStatsToProto(engine_->GetStats(), resp);
  return FinishUnary(ctx, m_stats_, absl::OkStatus(), start);
}

grpc::ServerUnaryReactor* MemoryService::Compact(grpc::CallbackServerContext* ctx,
                                                 const v1::CompactRequest* req,
                                                 v1::CompactResponse* resp) {
  const absl::Time start = absl::Now();
  absl::StatusOr<CompactionResult> r = engine_->Compact(req->device());
  if (r.ok()) {
    resp->set_moved_tensors(r->moved_tensors);
    resp->set_moved_bytes(r->moved_bytes);
    resp->set_released_bytes(r->released_bytes);
    resp->set_fragmentation_before(r->fragmentation_before);
    resp->set_fragmentation_after(r->fragmentation_after);
  }
  return FinishUnary(ctx, m_compact_, r.status(), start);
}

}  // namespace inferd
