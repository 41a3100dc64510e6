#include "server/kserve_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/infer_call.h"
#include "server/kserve_stream.h"
#include "server/server_call.h"
#include "core/util/version.h"

namespace inferd {
namespace {

constexpr char kService[] = "inference.GRPCInferenceService/";

inference::DataType WireType(DataType t) {
  // inference.DataType numbers follow the protocol's TYPE_* order.
  switch (t) {
    case DataType::kBool: return inference::TYPE_BOOL;
    case DataType::kUint8: return inference::TYPE_UINT8;
    case DataType::kUint16: return inference::TYPE_UINT16;
    case DataType::kUint32: return inference::TYPE_UINT32;
    case DataType::kUint64: return inference::TYPE_UINT64;
    case DataType::kInt8: return inference::TYPE_INT8;
    case DataType::kInt16: return inference::TYPE_INT16;
    case DataType::kInt32: return inference::TYPE_INT32;
    case DataType::kInt64: return inference::TYPE_INT64;
    case DataType::kFp16: return inference::TYPE_FP16;
    case DataType::kBf16: return inference::TYPE_BF16;
    case DataType::kFp32: return inference::TYPE_FP32;
    case DataType::kFp64: return inference::TYPE_FP64;
    case DataType::kBytes: return inference::TYPE_STRING;
    default: return inference::TYPE_INVALID;
  }
}

// A tensor's dims in Triton's convention: a batching model's config leaves
// the batch dimension out.
template <typename Tensor>
void FillDims(const TensorSpec& spec, int max_batch_size, Tensor* out) {
  const size_t skip = max_batch_size > 0 && !spec.shape.empty() ? 1 : 0;
  for (size_t i = skip; i < spec.shape.size(); ++i) out->add_dims(spec.shape[i]);
}

}  // namespace

KServeService::KServeService(const ModelRegistry* models, InferSubmitter* submitter,
                             KServeOptions options, GrpcMetrics* metrics)
    : models_(models),
      submitter_(submitter),
      options_(std::move(options)),
      m_live_(metrics->ForMethod(absl::StrCat(kService, "ServerLive"))),
      m_ready_(metrics->ForMethod(absl::StrCat(kService, "ServerReady"))),
      m_model_ready_(metrics->ForMethod(absl::StrCat(kService, "ModelReady"))),
      m_server_metadata_(metrics->ForMethod(absl::StrCat(kService, "ServerMetadata"))),
      m_model_metadata_(metrics->ForMethod(absl::StrCat(kService, "ModelMetadata"))),
      m_model_config_(metrics->ForMethod(absl::StrCat(kService, "ModelConfig"))),
      m_repository_index_(metrics->ForMethod(absl::StrCat(kService, "RepositoryIndex"))),
      m_repository_load_(metrics->ForMethod(absl::StrCat(kService, "RepositoryModelLoad"))),
      m_repository_unload_(metrics->ForMethod(absl::StrCat(kService, "RepositoryModelUnload"))),
      m_infer_(metrics->ForMethod(absl::StrCat(kService, "ModelInfer"))),
      m_stream_infer_(metrics->ForMethod(absl::StrCat(kService, "ModelStreamInfer"))),
      m_statistics_(metrics->ForMethod(absl::StrCat(kService, "ModelStatistics"))),
      m_shm_status_(metrics->ForMethod(absl::StrCat(kService, "SystemSharedMemoryStatus"))),
      m_shm_register_(metrics->ForMethod(absl::StrCat(kService, "SystemSharedMemoryRegister"))),
      m_shm_unregister_(
          metrics->ForMethod(absl::StrCat(kService, "SystemSharedMemoryUnregister"))),
      m_cuda_shm_status_(metrics->ForMethod(absl::StrCat(kService, "CudaSharedMemoryStatus"))),
      m_cuda_shm_register_(
          metrics->ForMethod(absl::StrCat(kService, "CudaSharedMemoryRegister"))),
      m_cuda_shm_unregister_(
          metrics->ForMethod(absl::StrCat(kService, "CudaSharedMemoryUnregister"))),
      m_trace_(metrics->ForMethod(absl::StrCat(kService, "TraceSetting"))),
      m_log_(metrics->ForMethod(absl::StrCat(kService, "LogSettings"))) {}

grpc::ServerUnaryReactor* KServeService::ServerLive(grpc::CallbackServerContext* ctx,
                                                    const inference::ServerLiveRequest*,
                                                    inference::ServerLiveResponse* resp) {
  UnaryCall call(ctx, m_live_);
  resp->set_live(true);
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ServerReady(grpc::CallbackServerContext* ctx,
                                                     const inference::ServerReadyRequest*,
                                                     inference::ServerReadyResponse* resp) {
  UnaryCall call(ctx, m_ready_);
  resp->set_ready(ready_.load(std::memory_order_acquire));
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelReady(grpc::CallbackServerContext* ctx,
                                                    const inference::ModelReadyRequest* req,
                                                    inference::ModelReadyResponse* resp) {
  UnaryCall call(ctx, m_model_ready_);
  auto model = models_->Find(req->name(), req->version());
  if (!model.ok()) return call.Finish(model.status());
  resp->set_ready(ready_.load(std::memory_order_acquire));
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ServerMetadata(grpc::CallbackServerContext* ctx,
                                                        const inference::ServerMetadataRequest*,
                                                        inference::ServerMetadataResponse* resp) {
  UnaryCall call(ctx, m_server_metadata_);
  resp->set_name("inferd");
  resp->set_version(kVersion);
  // Only what works: no sequence batching, trace or log settings.
  resp->add_extensions("classification");
  resp->add_extensions("model_repository");
  resp->add_extensions("model_repository(unload_dependents)");
  resp->add_extensions("model_configuration");
  resp->add_extensions("parameters");
  resp->add_extensions("statistics");
  if (shm_ != nullptr) {
    resp->add_extensions("system_shared_memory");
    if (options_.has_cuda_device) resp->add_extensions("cuda_shared_memory");
  }
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelMetadata(grpc::CallbackServerContext* ctx,
                                                       const inference::ModelMetadataRequest* req,
                                                       inference::ModelMetadataResponse* resp) {
  UnaryCall call(ctx, m_model_metadata_);
  auto model = models_->Find(req->name(), req->version());
  if (!model.ok()) return call.Finish(model.status());
  const ModelSignature& sig = (*model)->signature();
  resp->set_name(sig.name);
  resp->add_versions(sig.version);
  resp->set_platform(sig.platform);
  auto fill = [](const TensorSpec& spec, inference::ModelMetadataResponse::TensorMetadata* t) {
    t->set_name(spec.name);
    const absl::string_view dt = DataTypeName(spec.dtype);
    t->set_datatype(dt.data(), dt.size());
    for (int64_t d : spec.shape) t->add_shape(d);
  };
  for (const auto& s : sig.inputs) fill(s, resp->add_inputs());
  for (const auto& s : sig.outputs) fill(s, resp->add_outputs());
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelConfig(grpc::CallbackServerContext* ctx,
                                                     const inference::ModelConfigRequest* req,
                                                     inference::ModelConfigResponse* resp) {
  UnaryCall call(ctx, m_model_config_);
  auto model = models_->Find(req->name(), req->version());
  if (!model.ok()) return call.Finish(model.status());
  const ModelSignature& sig = (*model)->signature();
  auto* c = resp->mutable_config();
  c->set_name(sig.name);
  c->set_platform(sig.platform);
  c->set_backend(sig.platform);
  c->set_max_batch_size(sig.max_batch_size);
  for (const auto& s : sig.inputs) {
    auto* in = c->add_input();
    in->set_name(s.name);
    in->set_data_type(WireType(s.dtype));
    FillDims(s, sig.max_batch_size, in);
  }
  for (size_t i = 0; i < sig.outputs.size(); ++i) {
    const TensorSpec& s = sig.outputs[i];
    auto* out = c->add_output();
    out->set_name(s.name);
    out->set_data_type(WireType(s.dtype));
    FillDims(s, sig.max_batch_size, out);
    if (i < sig.labels.size()) out->set_label_filename(sig.labels[i].file);
  }
  auto* group = c->add_instance_group();
  group->set_name(sig.name);
  // Executions at once per device: the model's own limit, else the slots.
  group->set_count(sig.max_executions_per_device > 0
                       ? std::min(sig.max_executions_per_device, options_.instances_per_device)
                       : options_.instances_per_device);
  group->set_kind(options_.has_cuda_device ? inference::ModelInstanceGroup::KIND_GPU
                                           : inference::ModelInstanceGroup::KIND_CPU);
  std::optional<BatchingPolicy> batching;
  if (options_.batching && sig.max_batch_size > 0 && !sig.decoupled) {
    batching = options_.batching(sig);
  }
  if (batching.has_value() && batching->enabled) {
    auto* db = c->mutable_dynamic_batching();
    for (int size : batching->preferred_batch_sizes) db->add_preferred_batch_size(size);
    db->set_max_queue_delay_microseconds(
        static_cast<uint64_t>(absl::ToInt64Microseconds(batching->max_queue_delay)));
  }
  c->mutable_model_transaction_policy()->set_decoupled(sig.decoupled);
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::RepositoryIndex(
    grpc::CallbackServerContext* ctx, const inference::RepositoryIndexRequest* req,
    inference::RepositoryIndexResponse* resp) {
  UnaryCall call(ctx, m_repository_index_);
  if (repository_ != nullptr) {
    for (const RepositoryIndexEntry& entry : repository_->Index()) {
      if (req->ready() && entry.state != "READY") continue;
      auto* e = resp->add_models();
      e->set_name(entry.name);
      e->set_version(entry.version);
      e->set_state(entry.state);
      e->set_reason(entry.reason);
    }
    return call.Finish(absl::OkStatus());
  }
  for (const auto& m : models_->List()) {
    auto* e = resp->add_models();
    e->set_name(m->signature().name);
    e->set_version(m->signature().version);
    e->set_state("READY");
  }
  return call.Finish(absl::OkStatus());
}

namespace {

// The checks RepositoryModelLoad and RepositoryModelUnload share.
template <typename Request>
absl::Status CheckRepositoryRequest(const Request& req, const RepositoryManager* repository) {
  if (repository == nullptr) {
    return absl::FailedPreconditionError(
        "no model repository is configured (models.repository / --model-repository)");
  }
  if (!req.repository_name().empty()) {
    return absl::InvalidArgumentError(
        "repository_name: only the default repository (\"\") exists");
  }
  for (const auto& [key, value] : req.parameters()) {
    // tritonclient's unload always sends unload_dependents; inferd has no
    // ensembles, so a model never has dependents to unload with it.
    if (key == "unload_dependents" &&
        value.parameter_choice_case() == inference::ModelRepositoryParameter::kBoolParam) {
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters.", key.substr(0, 64),
        ": not supported (models load from the repository by name; no config or file travels "
        "over RPC)"));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* KServeService::RepositoryModelLoad(
    grpc::CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* req,
    inference::RepositoryModelLoadResponse*) {
  UnaryCall call(ctx, m_repository_load_);
  absl::Status st = CheckRepositoryRequest(*req, repository_);
  if (st.ok()) st = repository_->Load(req->model_name());
  return call.Finish(st);
}

grpc::ServerUnaryReactor* KServeService::RepositoryModelUnload(
    grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* req,
    inference::RepositoryModelUnloadResponse*) {
  UnaryCall call(ctx, m_repository_unload_);
  absl::Status st = CheckRepositoryRequest(*req, repository_);
  if (st.ok()) st = repository_->Unload(req->model_name());
  return call.Finish(st);
}

void ModelInferCall::Complete(absl::Status status) {
  if (model != nullptr) {
    status = filler_.Finish(model->signature(), std::move(status));
  } else {
    response_->clear_outputs();
    response_->clear_raw_output_contents();
  }
  std::optional<grpc::Status> wire = call_.End(status);
  if (wire.has_value()) Send(*wire);
}

void KServeService::Infer(const inference::ModelInferRequest& req,
                          inference::ModelInferResponse* resp, ModelInferCall* call) {
  resp->set_model_name(req.model_name());
  resp->set_id(req.id());
  InferRequest request;
  absl::Status st = DecodeInferRequest(req, *models_, limits_, shm_, &request, &call->decoded);
  if (st.ok() && request.model->signature().decoupled) {
    st = absl::InvalidArgumentError(absl::StrCat(
        "model_name: model '", request.model->signature().name,
        "' is decoupled (0..N responses per request): use ModelStreamInfer"));
  }
  if (!st.ok()) {
    if (request.model != nullptr) {
      request.model->statistics().RecordFailure(absl::ZeroDuration(), absl::Now());
    }
    call->Complete(std::move(st));
    return;
  }
  call->model = request.model;
  resp->set_model_version(request.model->signature().version);
  submitter_->Submit(std::move(request), call);
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
KServeService::ModelStreamInfer(grpc::CallbackServerContext*) {
  StreamInferContext context;
  context.models = models_;
  context.submitter = submitter_;
  context.limits = &limits_;
  context.shm = shm_;
  context.max_held = options_.max_stream_held_responses;
  context.metrics = m_stream_infer_;
  return new StreamInferReactor(context);
}

grpc::ServerUnaryReactor* KServeService::TraceSetting(grpc::CallbackServerContext* ctx,
                                                      const inference::TraceSettingRequest*,
                                                      inference::TraceSettingResponse*) {
  UnaryCall call(ctx, m_trace_);
  return call.Finish(absl::UnimplementedError(
                         "TraceSetting: inferd has no request tracing; per-model timings are in "
                         "ModelStatistics and the inferd_* Prometheus metrics"));
}

grpc::ServerUnaryReactor* KServeService::LogSettings(grpc::CallbackServerContext* ctx,
                                                     const inference::LogSettingsRequest*,
                                                     inference::LogSettingsResponse*) {
  UnaryCall call(ctx, m_log_);
  return call.Finish(absl::UnimplementedError(
                         "LogSettings: the log level is set at start (server.log_level, "
                         "--log-level) and is not changed over RPC"));
}

}  // namespace inferd
