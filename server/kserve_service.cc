#include "server/kserve_service.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"
#include "core/util/echo.h"
#include "server/status_util.h"
#include "server/tensor_codec.h"

#ifndef INFERD_VERSION
#define INFERD_VERSION "0.0.0"
#endif

namespace inferd {
namespace {

constexpr char kService[] = "inference.GRPCInferenceService/";

absl::Status ParsePriority(const inference::InferParameter& p, Priority* out) {
  static constexpr const char* kNames[] = {"CRITICAL", "HIGH", "NORMAL", "LOW", "BACKGROUND"};
  if (p.parameter_choice_case() == inference::InferParameter::kStringParam) {
    const std::string upper = absl::AsciiStrToUpper(p.string_param());
    for (int i = 0; i < kNumPriorities; ++i) {
      if (upper == kNames[i]) {
        *out = static_cast<Priority>(i);
        return absl::OkStatus();
      }
    }
  } else if (p.parameter_choice_case() == inference::InferParameter::kInt64Param ||
             p.parameter_choice_case() == inference::InferParameter::kUint64Param) {
    // Triton's convention: 1 is the highest level, 0 the default.
    const int64_t v = p.parameter_choice_case() == inference::InferParameter::kInt64Param
                          ? p.int64_param()
                          : static_cast<int64_t>(p.uint64_param());
    if (v == 0) {
      *out = Priority::kNormal;
      return absl::OkStatus();
    }
    if (v >= 1 && v <= kNumPriorities) {
      *out = static_cast<Priority>(v - 1);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      "parameters.priority: expected CRITICAL|HIGH|NORMAL|LOW|BACKGROUND or an integer 0..5");
}

absl::Status ParseParams(const inference::ModelInferRequest& wire, InferRequest* request) {
  for (const auto& [key, value] : wire.parameters()) {
    if (key == "priority") {
      if (absl::Status st = ParsePriority(value, &request->priority); !st.ok()) return st;
    } else if (key == "factor") {
      switch (value.parameter_choice_case()) {
        case inference::InferParameter::kDoubleParam:
          request->params.factor = value.double_param();
          break;
        case inference::InferParameter::kInt64Param:
          request->params.factor = static_cast<double>(value.int64_param());
          break;
        default:
          return absl::InvalidArgumentError("parameters.factor: expected a double or int64");
      }
      request->params.has_factor = true;
    }
    // Other parameters (sequence ids, timeouts of other servers) are ignored,
    // as the protocol allows.
  }
  return absl::OkStatus();
}

// Completes one ModelInfer call: fills the response as outputs arrive.
class InferCall final : public InferResponder {
 public:
  InferCall(grpc::ServerUnaryReactor* reactor, inference::ModelInferResponse* response,
            MethodMetrics* metrics)
      : reactor_(reactor), response_(response), timer_(metrics) {}

  void* AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) override {
    if (index >= 64 || !(mask_ >> index & 1)) return nullptr;
    auto* out = response_->add_outputs();
    out->set_name(spec.name);
    const absl::string_view dt = DataTypeName(desc.dtype);
    out->set_datatype(dt.data(), dt.size());
    for (int64_t d : desc.shape) out->add_shape(d);
    std::string* raw = response_->add_raw_output_contents();
    raw->resize(desc.byte_size);
    return raw->data();
  }

  void Complete(absl::Status status) override {
    if (!status.ok()) {
      response_->clear_outputs();
      response_->clear_raw_output_contents();
    }
    grpc::Status gs = ToGrpcStatus(status);
    timer_.Finish(gs.error_code());
    reactor_->Finish(gs);
    delete this;
  }

  std::vector<std::string> storage;
  uint64_t mask_ = ~uint64_t{0};

 private:
  grpc::ServerUnaryReactor* const reactor_;
  inference::ModelInferResponse* const response_;
  CallTimer timer_;
};

}  // namespace

absl::Status DecodeInferRequest(const inference::ModelInferRequest& wire,
                                const ModelRegistry& models, const LimitsConfig& limits,
                                InferRequest* request, std::vector<std::string>* storage,
                                uint64_t* requested_outputs_mask) {
  if (wire.model_name().empty()) return absl::InvalidArgumentError("model_name: must be set");
  absl::StatusOr<std::shared_ptr<const Model>> model =
      models.Find(wire.model_name(), wire.model_version());
  if (!model.ok()) return model.status();
  request->model = *std::move(model);
  if (absl::Status st = ParseParams(wire, request); !st.ok()) return st;

  const int n = wire.inputs_size();
  if (n > limits.max_inputs) {
    return absl::InvalidArgumentError(absl::StrCat("inputs: ", n, " inputs exceed limits.max_inputs (",
                                                   limits.max_inputs, ")"));
  }
  const bool raw = wire.raw_input_contents_size() > 0;
  if (raw && wire.raw_input_contents_size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents: ", wire.raw_input_contents_size(), " entries for ", n,
        " inputs (one per input, in input order)"));
  }
  request->inputs.clear();
  // Inputs point into `storage`: no reallocation may move it (small strings
  // live inside the vector's elements).
  if (!raw) storage->reserve(storage->size() + static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto& in = wire.inputs(i);
    const std::string field = absl::StrCat("inputs[", i, "]");
    std::optional<DataType> dtype = ParseDataType(in.datatype());
    if (!dtype) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".datatype: unsupported datatype ",
                                                     Echo(in.datatype())));
    }
    InferInput input;
    input.name = in.name();
    input.desc.dtype = *dtype;
    if (in.shape_size() > limits.max_dims) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".shape: rank ", in.shape_size(),
                                                     " exceeds limits.max_dims (", limits.max_dims,
                                                     ")"));
    }
    input.desc.shape.assign(in.shape().begin(), in.shape().end());
    uint64_t elements = 0;
    if (!ShapeElementCount(input.desc.shape, &elements)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".shape: negative dimension or element count overflow"));
    }
    if (raw) {
      if (in.has_contents()) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".contents: must be empty when raw_input_contents is used"));
      }
      const std::string& bytes = wire.raw_input_contents(i);
      input.data = bytes.data();
      input.desc.byte_size = bytes.size();
    } else {
      storage->emplace_back();
      if (absl::Status st = DecodeTypedContents(in.contents(), *dtype, elements,
                                                field + ".contents", &storage->back());
          !st.ok()) {
        return st;
      }
      input.data = storage->back().data();
      input.desc.byte_size = storage->back().size();
    }
    request->inputs.push_back(input);
  }
  if (absl::Status st = BindInputs(limits, request); !st.ok()) return st;

  const ModelSignature& sig = request->model->signature();
  if (wire.outputs_size() > 0) {
    uint64_t mask = 0;
    for (int i = 0; i < wire.outputs_size(); ++i) {
      const std::string& name = wire.outputs(i).name();
      size_t j = 0;
      while (j < sig.outputs.size() && sig.outputs[j].name != name) ++j;
      if (j == sig.outputs.size() || j >= 64) {
        return absl::InvalidArgumentError(absl::StrCat("outputs[", i, "].name: model '", sig.name,
                                                       "' has no output named ", Echo(name)));
      }
      mask |= uint64_t{1} << j;
    }
    *requested_outputs_mask = mask;
  } else {
    *requested_outputs_mask = ~uint64_t{0};
  }
  return absl::OkStatus();
}

KServeService::KServeService(const ModelRegistry* models, InferSubmitter* submitter,
                             const LimitsConfig& limits, GrpcMetrics* metrics,
                             RepositoryManager* repository)
    : models_(models),
      submitter_(submitter),
      limits_(limits),
      m_live_(metrics->ForMethod(absl::StrCat(kService, "ServerLive"))),
      m_ready_(metrics->ForMethod(absl::StrCat(kService, "ServerReady"))),
      m_model_ready_(metrics->ForMethod(absl::StrCat(kService, "ModelReady"))),
      m_server_metadata_(metrics->ForMethod(absl::StrCat(kService, "ServerMetadata"))),
      m_model_metadata_(metrics->ForMethod(absl::StrCat(kService, "ModelMetadata"))),
      m_model_config_(metrics->ForMethod(absl::StrCat(kService, "ModelConfig"))),
      m_repository_index_(metrics->ForMethod(absl::StrCat(kService, "RepositoryIndex"))),
      repository_(repository),
      m_repository_load_(metrics->ForMethod(absl::StrCat(kService, "RepositoryModelLoad"))),
      m_repository_unload_(metrics->ForMethod(absl::StrCat(kService, "RepositoryModelUnload"))),
      m_infer_(metrics->ForMethod(absl::StrCat(kService, "ModelInfer"))) {}

grpc::ServerUnaryReactor* KServeService::ServerLive(grpc::CallbackServerContext* ctx,
                                                    const inference::ServerLiveRequest*,
                                                    inference::ServerLiveResponse* resp) {
  CallTimer timer(m_live_);
  resp->set_live(true);
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ServerReady(grpc::CallbackServerContext* ctx,
                                                     const inference::ServerReadyRequest*,
                                                     inference::ServerReadyResponse* resp) {
  CallTimer timer(m_ready_);
  resp->set_ready(ready_.load(std::memory_order_acquire));
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelReady(grpc::CallbackServerContext* ctx,
                                                    const inference::ModelReadyRequest* req,
                                                    inference::ModelReadyResponse* resp) {
  CallTimer timer(m_model_ready_);
  auto model = models_->Find(req->name(), req->version());
  if (!model.ok()) return FinishUnary(ctx, timer, model.status());
  resp->set_ready(ready_.load(std::memory_order_acquire));
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ServerMetadata(grpc::CallbackServerContext* ctx,
                                                        const inference::ServerMetadataRequest*,
                                                        inference::ServerMetadataResponse* resp) {
  CallTimer timer(m_server_metadata_);
  resp->set_name("inferd");
  resp->set_version(INFERD_VERSION);
  resp->add_extensions("model_repository");
  resp->add_extensions("statistics");
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelMetadata(grpc::CallbackServerContext* ctx,
                                                       const inference::ModelMetadataRequest* req,
                                                       inference::ModelMetadataResponse* resp) {
  CallTimer timer(m_model_metadata_);
  auto model = models_->Find(req->name(), req->version());
  if (!model.ok()) return FinishUnary(ctx, timer, model.status());
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
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::ModelConfig(grpc::CallbackServerContext* ctx,
                                                     const inference::ModelConfigRequest* req,
                                                     inference::ModelConfigResponse* resp) {
  CallTimer timer(m_model_config_);
  auto model = models_->Find(req->name(), req->version());
  if (!model.ok()) return FinishUnary(ctx, timer, model.status());
  const ModelSignature& sig = (*model)->signature();
  auto* c = resp->mutable_config();
  c->set_name(sig.name);
  c->set_platform(sig.platform);
  c->set_backend(sig.platform);
  c->set_max_batch_size(sig.max_batch_size);
  auto wire_type = [](DataType t) {
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
  };
  for (const auto& s : sig.inputs) {
    auto* in = c->add_input();
    in->set_name(s.name);
    in->set_data_type(wire_type(s.dtype));
    for (int64_t d : s.shape) in->add_dims(d);
  }
  for (const auto& s : sig.outputs) {
    auto* out = c->add_output();
    out->set_name(s.name);
    out->set_data_type(wire_type(s.dtype));
    for (int64_t d : s.shape) out->add_dims(d);
  }
  return FinishUnary(ctx, timer, absl::OkStatus());
}

grpc::ServerUnaryReactor* KServeService::RepositoryIndex(
    grpc::CallbackServerContext* ctx, const inference::RepositoryIndexRequest* req,
    inference::RepositoryIndexResponse* resp) {
  CallTimer timer(m_repository_index_);
  if (repository_ != nullptr) {
    for (const RepositoryIndexEntry& entry : repository_->Index()) {
      if (req->ready() && entry.state != "READY") continue;
      auto* e = resp->add_models();
      e->set_name(entry.name);
      e->set_version(entry.version);
      e->set_state(entry.state);
      e->set_reason(entry.reason);
    }
    return FinishUnary(ctx, timer, absl::OkStatus());
  }
  for (const auto& m : models_->List()) {
    auto* e = resp->add_models();
    e->set_name(m->signature().name);
    e->set_version(m->signature().version);
    e->set_state("READY");
  }
  return FinishUnary(ctx, timer, absl::OkStatus());
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
  if (!req.parameters().empty()) {
    return absl::InvalidArgumentError(
        "parameters: not supported (models load from the repository by name only)");
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* KServeService::RepositoryModelLoad(
    grpc::CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* req,
    inference::RepositoryModelLoadResponse*) {
  CallTimer timer(m_repository_load_);
  absl::Status st = CheckRepositoryRequest(*req, repository_);
  if (st.ok()) st = repository_->Load(req->model_name());
  return FinishUnary(ctx, timer, st);
}

grpc::ServerUnaryReactor* KServeService::RepositoryModelUnload(
    grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* req,
    inference::RepositoryModelUnloadResponse*) {
  CallTimer timer(m_repository_unload_);
  absl::Status st = CheckRepositoryRequest(*req, repository_);
  if (st.ok()) st = repository_->Unload(req->model_name());
  return FinishUnary(ctx, timer, st);
}

grpc::ServerUnaryReactor* KServeService::ModelInfer(grpc::CallbackServerContext* ctx,
                                                    const inference::ModelInferRequest* req,
                                                    inference::ModelInferResponse* resp) {
  // DefaultReactor() re-initializes the reactor on every call: take it once.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto* call = new InferCall(reactor, resp, m_infer_);
  resp->set_model_name(req->model_name());
  resp->set_id(req->id());
  InferRequest request;
  absl::Status st =
      DecodeInferRequest(*req, *models_, limits_, &request, &call->storage, &call->mask_);
  if (!st.ok()) {
    call->Complete(std::move(st));
    return reactor;
  }
  resp->set_model_version(request.model->signature().version);
  submitter_->Submit(std::move(request), call);
  return reactor;
}

}  // namespace inferd
