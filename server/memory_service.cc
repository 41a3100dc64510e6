#include "server/memory_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/memory_proto.h"
#include "server/server_call.h"
#include "server/tensor_proto.h"
#include "server/token_auth.h"

namespace inferd {
namespace {

constexpr char kService[] = "inferd.v1.Memory/";
constexpr uint32_t kDefaultChunk = 1u << 20;
constexpr uint32_t kMaxChunk = 4u << 20;

absl::StatusOr<TensorId> ParseId(const std::string& text) { return ParseTensorId(text, "tensor_id"); }

// One client-streaming upload: header, then chunks written in order.
class UploadReactor final : public grpc::ServerReadReactor<v1::UploadTensorRequest> {
 public:
  UploadReactor(MemoryEngine* engine, v1::TensorInfo* resp, MethodMetrics* m,
                std::optional<Caller> caller)
      : engine_(engine), resp_(resp), call_(m), caller_(std::move(caller)) {
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
    call_.Finish(this, st);
  }

  MemoryEngine* const engine_;
  v1::TensorInfo* const resp_;
  ServerCall call_;
  const std::optional<Caller> caller_;  // with server.auth
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
      : engine_(engine), call_(m) {
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
  void Done(absl::Status st) { call_.Finish(this, st); }

  MemoryEngine* const engine_;
  ServerCall call_;
  TensorId id_;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  uint32_t chunk_ = kDefaultChunk;
  v1::DownloadTensorResponse resp_;
};

}  // namespace

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
  UnaryCall call(ctx, m_allocate_);
  absl::StatusOr<TensorRequest> tr = TensorRequestFromProto(*req, "request");
  if (!tr.ok()) return call.Finish(tr.status());
  absl::StatusOr<std::string> owner = OwnerFor(CallerOf(*ctx), tr->owner, "AllocateTensor", "owner");
  if (!owner.ok()) return call.Finish(owner.status());
  tr->owner = *std::move(owner);
  absl::StatusOr<TensorInfo> info = engine_->AllocateTensor(*tr);
  if (info.ok()) TensorInfoToProto(*info, resp);
  return call.Finish(info.status());
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
  UnaryCall call(ctx, m_free_);
  absl::StatusOr<TensorId> id = ParseId(req->tensor_id());
  if (!id.ok()) return call.Finish(id.status());
  // With server.auth, another caller's tensor needs role admin.
  if (std::optional<Caller> caller = CallerOf(*ctx); caller.has_value()) {
    absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
    if (!info.ok()) return call.Finish(info.status());
    absl::Status allowed = CheckOwner(caller, info->owner, "FreeTensor",
                                      absl::StrCat("tensor ", req->tensor_id()));
    if (!allowed.ok()) return call.Finish(allowed);
  }
  return call.Finish(engine_->FreeTensor(*id));
}

grpc::ServerUnaryReactor* MemoryService::RenewLease(grpc::CallbackServerContext* ctx,
                                                    const v1::RenewLeaseRequest* req,
                                                    v1::TensorInfo* resp) {
  UnaryCall call(ctx, m_renew_);
  absl::StatusOr<TensorId> id = ParseId(req->tensor_id());
  if (!id.ok()) return call.Finish(id.status());
  absl::StatusOr<absl::Duration> lease = LeaseFromProto(req->lease_seconds(), "lease_seconds");
  if (!lease.ok()) return call.Finish(lease.status());
  absl::StatusOr<absl::Time> until = engine_->RenewLease(*id, *lease);
  if (!until.ok()) return call.Finish(until.status());
  absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
  if (info.ok()) TensorInfoToProto(*info, resp);
  return call.Finish(info.status());
}

grpc::ServerUnaryReactor* MemoryService::GetTensor(grpc::CallbackServerContext* ctx,
                                                   const v1::GetTensorRequest* req,
                                                   v1::TensorInfo* resp) {
  UnaryCall call(ctx, m_get_);
  absl::StatusOr<TensorId> id = ParseId(req->tensor_id());
  if (!id.ok()) return call.Finish(id.status());
  absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
  if (info.ok()) TensorInfoToProto(*info, resp);
  return call.Finish(info.status());
}

grpc::ServerUnaryReactor* MemoryService::ListTensors(grpc::CallbackServerContext* ctx,
                                                     const v1::ListTensorsRequest* req,
                                                     v1::ListTensorsResponse* resp) {
  UnaryCall call(ctx, m_list_);
  absl::StatusOr<TensorListOptions> o = TensorListOptionsFromProto(*req);
  if (!o.ok()) return call.Finish(o.status());
  absl::StatusOr<TensorPage> page = engine_->ListTensors(*o);
  if (page.ok()) {
    for (const TensorInfo& t : page->tensors) TensorInfoToProto(t, resp->add_tensors());
    resp->set_next_page_token(page->next_page_token);
  }
  return call.Finish(page.status());
}

grpc::ServerUnaryReactor* MemoryService::GetOptimalBatchSize(
    grpc::CallbackServerContext* ctx, const v1::GetOptimalBatchSizeRequest* req,
    v1::GetOptimalBatchSizeResponse* resp) {
  UnaryCall call(ctx, m_batch_);
  absl::StatusOr<BatchSizeRequest> b = BatchSizeRequestFromProto(*req);
  if (!b.ok()) return call.Finish(b.status());
  absl::StatusOr<int64_t> n = engine_->GetOptimalBatchSize(*b);
  if (n.ok()) resp->set_batch_size(*n);
  return call.Finish(n.status());
}

grpc::ServerUnaryReactor* MemoryService::GetMemoryStats(grpc::CallbackServerContext* ctx,
                                                        const v1::GetMemoryStatsRequest*,
                                                        v1::MemoryStats* resp) {
  UnaryCall call(ctx, m_stats_);
  MemoryStatsToProto(engine_->GetStats(), resp);
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* MemoryService::Compact(grpc::CallbackServerContext* ctx,
                                                 const v1::CompactRequest* req,
                                                 v1::CompactResponse* resp) {
  UnaryCall call(ctx, m_compact_);
  absl::StatusOr<CompactionResult> r = engine_->Compact(req->device());
  if (r.ok()) CompactionResultToProto(*r, resp);
  return call.Finish(r.status());
}

}  // namespace inferd
