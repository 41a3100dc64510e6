#include "server/infer_call.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"
#include "core/util/echo.h"
#include "core/util/priority.h"
#include "server/tensor_codec.h"

namespace inferd {
namespace {

using ParamMap = google::protobuf::Map<std::string, inference::InferParameter>;

absl::Status ParsePriority(const inference::InferParameter& p, Priority* out) {
  if (p.parameter_choice_case() == inference::InferParameter::kStringParam) {
    if (std::optional<Priority> named = ParsePriorityName(p.string_param())) {
      *out = *named;
      return absl::OkStatus();
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

// An integer parameter (int64 or uint64, as clients differ) that must be >= 0.
absl::StatusOr<uint64_t> NonNegativeParam(const inference::InferParameter& p,
                                          absl::string_view field) {
  if (p.parameter_choice_case() == inference::InferParameter::kInt64Param && p.int64_param() >= 0) {
    return static_cast<uint64_t>(p.int64_param());
  }
  if (p.parameter_choice_case() == inference::InferParameter::kUint64Param) {
    return p.uint64_param();
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": expected a non-negative integer"));
}

bool IsSet(const inference::InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam: return p.bool_param();
    case inference::InferParameter::kInt64Param: return p.int64_param() != 0;
    case inference::InferParameter::kUint64Param: return p.uint64_param() != 0;
    case inference::InferParameter::kStringParam: return !p.string_param().empty();
    default: return false;
  }
}

absl::Status ParseParams(const inference::ModelInferRequest& wire, InferRequest* request,
                         DecodedCall* call) {
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
    } else if (key == "triton_enable_empty_final_response") {
      if (value.parameter_choice_case() != inference::InferParameter::kBoolParam) {
        return absl::InvalidArgumentError(
            "parameters.triton_enable_empty_final_response: expected a bool");
      }
      call->enable_empty_final_response = value.bool_param();
    } else if (key == "sequence_id" || key == "sequence_start" || key == "sequence_end") {
      if (IsSet(value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameters.", key, ": model '", wire.model_name(),
            "' has no sequence batching (inferd serves stateless models)"));
      }
    }
    // Other parameters (timeouts of other servers, custom keys) are ignored,
    // as the protocol allows.
  }
  return absl::OkStatus();
}

// The shared_memory_* parameters of one tensor (`tensor`: "inputs[0]");
// nullopt when it has none. Field names are built only for errors.
absl::StatusOr<std::optional<SharedMemoryView>> ParseShm(const ParamMap& params,
                                                        absl::string_view tensor,
                                                        const SharedMemoryRegistry* shm) {
  auto region = params.find("shared_memory_region");
  if (region == params.end()) {
    for (const char* k : {"shared_memory_byte_size", "shared_memory_offset"}) {
      if (params.contains(k)) {
        return absl::InvalidArgumentError(
            absl::StrCat(tensor, ".parameters.", k, ": set without shared_memory_region"));
      }
    }
    return std::optional<SharedMemoryView>();
  }
  const std::string field = absl::StrCat(tensor, ".parameters");
  if (region->second.parameter_choice_case() != inference::InferParameter::kStringParam) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".shared_memory_region: expected a string"));
  }
  if (shm == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ".shared_memory_region: shared memory is not available"));
  }
  auto size = params.find("shared_memory_byte_size");
  if (size == params.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".shared_memory_byte_size: required with shared_memory_region"));
  }
  absl::StatusOr<uint64_t> byte_size =
      NonNegativeParam(size->second, absl::StrCat(field, ".shared_memory_byte_size"));
  if (!byte_size.ok()) return byte_size.status();
  uint64_t offset = 0;
  if (auto it = params.find("shared_memory_offset"); it != params.end()) {
    absl::StatusOr<uint64_t> v =
        NonNegativeParam(it->second, absl::StrCat(field, ".shared_memory_offset"));
    if (!v.ok()) return v.status();
    offset = *v;
  }
  absl::StatusOr<SharedMemoryView> view =
      shm->Resolve(region->second.string_param(), offset, *byte_size, field);
  if (!view.ok()) return view.status();
  return std::optional<SharedMemoryView>(*std::move(view));
}

absl::Status DecodeOutputs(const inference::ModelInferRequest& wire,
                           const SharedMemoryRegistry* shm, const ModelSignature& sig,
                           DecodedCall* call) {
  call->outputs.assign(sig.outputs.size(), OutputRoute{});
  if (wire.outputs_size() == 0) {
    for (OutputRoute& r : call->outputs) r.wanted = true;
    return absl::OkStatus();
  }
  for (int i = 0; i < wire.outputs_size(); ++i) {
    const auto& out = wire.outputs(i);
    const std::string field = absl::StrCat("outputs[", i, "]");
    size_t j = 0;
    while (j < sig.outputs.size() && sig.outputs[j].name != out.name()) ++j;
    if (j == sig.outputs.size()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".name: model '", sig.name,
                                                     "' has no output named ", Echo(out.name())));
    }
    OutputRoute& route = call->outputs[j];
    if (route.wanted) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".name: output '", out.name(), "' requested twice"));
    }
    route.wanted = true;
    absl::StatusOr<std::optional<SharedMemoryView>> view = ParseShm(out.parameters(), field, shm);
    if (!view.ok()) return view.status();
    route.shm = *std::move(view);
    if (auto it = out.parameters().find("classification"); it != out.parameters().end()) {
      absl::StatusOr<uint64_t> k =
          NonNegativeParam(it->second, absl::StrCat(field, ".parameters.classification"));
      if (!k.ok()) return k.status();
      if (*k == 0 || *k > (1u << 20)) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".parameters.classification: ", *k, " is out of range [1, 1048576]"));
      }
      if (route.shm.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".parameters: classification and shared_memory_region are exclusive"));
      }
      if (sig.outputs[j].dtype == DataType::kBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".parameters.classification: output '", out.name(), "' is not numeric"));
      }
      route.classification = static_cast<int64_t>(*k);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeInferRequest(const inference::ModelInferRequest& wire,
                                const ModelRegistry& models, const LimitsConfig& limits,
                                const SharedMemoryRegistry* shm, InferRequest* request,
                                DecodedCall* call) {
  if (wire.model_name().empty()) return absl::InvalidArgumentError("model_name: must be set");
  absl::StatusOr<std::shared_ptr<const Model>> model =
      models.Find(wire.model_name(), wire.model_version());
  if (!model.ok()) return model.status();
  request->model = *std::move(model);
  if (absl::Status st = ParseParams(wire, request, call); !st.ok()) return st;

  const int n = wire.inputs_size();
  if (n > limits.max_inputs) {
    return absl::InvalidArgumentError(absl::StrCat("inputs: ", n, " inputs exceed limits.max_inputs (",
                                                   limits.max_inputs, ")"));
  }
  // Raw entries belong, in order, to the inputs not in shared memory.
  int raw_index = 0;
  const bool raw = wire.raw_input_contents_size() > 0;
  request->inputs.clear();
  // Inputs point into `storage`: no reallocation may move it (small strings
  // live inside the vector's elements).
  call->storage.reserve(call->storage.size() + static_cast<size_t>(n));
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
    absl::StatusOr<std::optional<SharedMemoryView>> view = ParseShm(in.parameters(), field, shm);
    if (!view.ok()) return view.status();
    if (view->has_value()) {
      if (in.has_contents()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".contents: must be empty for a shared-memory input"));
      }
      const SharedMemoryView& v = **view;
      input.data = v.data();
      input.desc.byte_size = v.byte_size;
      input.device = v.region->device();
      call->input_regions.push_back(**std::move(view));
    } else if (raw) {
      if (in.has_contents()) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".contents: must be empty when raw_input_contents is used"));
      }
      if (raw_index >= wire.raw_input_contents_size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "raw_input_contents: ", wire.raw_input_contents_size(),
            " entries for more inputs (one per input not in shared memory, in input order)"));
      }
      const std::string& bytes = wire.raw_input_contents(raw_index++);
      input.data = bytes.data();
      input.desc.byte_size = bytes.size();
    } else {
      call->storage.emplace_back();
      if (absl::Status st = DecodeTypedContents(in.contents(), *dtype, elements,
                                                field + ".contents", &call->storage.back());
          !st.ok()) {
        return st;
      }
      input.data = call->storage.back().data();
      input.desc.byte_size = call->storage.back().size();
    }
    request->inputs.push_back(input);
  }
  if (raw && raw_index != wire.raw_input_contents_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents: ", wire.raw_input_contents_size(), " entries for ", raw_index,
        " inputs (one per input not in shared memory, in input order)"));
  }
  if (absl::Status st = BindInputs(limits, request); !st.ok()) return st;
  return DecodeOutputs(wire, shm, request->model->signature(), call);
}

// ---------------------------------------------------------------------------
// ResponseFiller

void* ResponseFiller::AddOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                                bool raw) {
  auto* out = response_->add_outputs();
  out->set_name(spec.name);
  const absl::string_view dt = DataTypeName(desc.dtype);
  out->set_datatype(dt.data(), dt.size());
  for (int64_t d : desc.shape) out->add_shape(d);
  // One raw entry per output, empty for those in shared memory (as Triton).
  std::string* bytes = response_->add_raw_output_contents();
  if (!raw) return nullptr;
  bytes->resize(desc.byte_size);
  return bytes->data();
}

void* ResponseFiller::AllocateDeviceOutput(int index, const TensorSpec& spec,
                                           const TensorDesc& desc, Device& device) {
  if (index < 0 || static_cast<size_t>(index) >= call_->outputs.size()) return nullptr;
  const OutputRoute& route = call_->outputs[index];
  if (!route.wanted || !route.shm.has_value() || route.shm->region->device() != &device) {
    return nullptr;
  }
  if (desc.byte_size > route.shm->byte_size) {
    return nullptr;  // AllocateOutput reports it
  }
  AddOutput(index, spec, desc, /*raw=*/false);
  return route.shm->data();
}

void* ResponseFiller::AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) {
  if (index < 0 || static_cast<size_t>(index) >= call_->outputs.size()) return nullptr;
  const OutputRoute& route = call_->outputs[index];
  if (!route.wanted) return nullptr;
  if (route.shm.has_value()) {
    if (desc.byte_size > route.shm->byte_size) {
      if (error_.ok()) {
        error_ = absl::InvalidArgumentError(absl::StrCat(
            "outputs (", spec.name, ").parameters.shared_memory_byte_size: ",
            route.shm->byte_size, " bytes are too few for the output's ", desc.byte_size));
      }
      return nullptr;
    }
    AddOutput(index, spec, desc, /*raw=*/false);
    if (route.shm->region->device() == nullptr) return route.shm->data();
    // A CUDA region of another device: staged, copied there by Finish.
  } else if (route.classification == 0) {
    return AddOutput(index, spec, desc, /*raw=*/true);
  } else {
    AddOutput(index, spec, desc, /*raw=*/false);
  }
  Pending& p = pending_.emplace_back();
  p.index = index;
  p.desc = desc;
  p.bytes.resize(desc.byte_size);
  p.output_slot = response_->outputs_size() - 1;
  return p.bytes.data();
}

namespace {

// Reads element i of a numeric tensor as a double.
double ElementAt(DataType dtype, const uint8_t* data, uint64_t i) {
  switch (dtype) {
#define INFERD_ELEMENT(kType, T) \
  case DataType::kType: {        \
    T v;                         \
    std::memcpy(&v, data + i * sizeof(T), sizeof(T)); \
    return static_cast<double>(v); \
  }
    INFERD_ELEMENT(kBool, uint8_t)
    INFERD_ELEMENT(kUint8, uint8_t)
    INFERD_ELEMENT(kUint16, uint16_t)
    INFERD_ELEMENT(kUint32, uint32_t)
    INFERD_ELEMENT(kUint64, uint64_t)
    INFERD_ELEMENT(kInt8, int8_t)
    INFERD_ELEMENT(kInt16, int16_t)
    INFERD_ELEMENT(kInt32, int32_t)
    INFERD_ELEMENT(kInt64, int64_t)
    INFERD_ELEMENT(kFp32, float)
    INFERD_ELEMENT(kFp64, double)
#undef INFERD_ELEMENT
    default:
      return 0;  // FP16/BF16 are not classified (refused at decode)
  }
}

bool IsFloating(DataType dtype) {
  return dtype == DataType::kFp32 || dtype == DataType::kFp64;
}

// Triton's classification output: per batch entry, the top `k` elements as
// "value:index" or "value:index:label", serialized as BYTES.
absl::Status Classify(const ModelSignature& sig, int index, const TensorDesc& desc,
                      const std::string& bytes, int64_t k,
                      inference::ModelInferResponse::InferOutputTensor* out, std::string* raw) {
  if (desc.dtype == DataType::kFp16 || desc.dtype == DataType::kBf16 ||
      desc.dtype == DataType::kBytes) {
    return absl::InvalidArgumentError(absl::StrCat("outputs (", sig.outputs[index].name,
                                                   ").parameters.classification: ",
                                                   DataTypeName(desc.dtype),
                                                   " outputs are not classified"));
  }
  const bool batched = sig.max_batch_size > 0 && !desc.shape.empty();
  const uint64_t batch = batched ? static_cast<uint64_t>(desc.shape[0]) : 1;
  const uint64_t elements = desc.byte_size / DataTypeSize(desc.dtype);
  const uint64_t per_entry = batch == 0 ? 0 : elements / batch;
  const uint64_t top = std::min<uint64_t>(static_cast<uint64_t>(k), per_entry);
  const std::vector<std::string>* labels =
      static_cast<size_t>(index) < sig.labels.size() ? &sig.labels[index].labels : nullptr;
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  raw->clear();
  std::vector<uint64_t> order(per_entry);
  for (uint64_t b = 0; b < batch; ++b) {
    std::iota(order.begin(), order.end(), uint64_t{0});
    const uint64_t base = b * per_entry;
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(top), order.end(),
                      [&](uint64_t x, uint64_t y) {
                        const double vx = ElementAt(desc.dtype, data, base + x);
                        const double vy = ElementAt(desc.dtype, data, base + y);
                        return vx > vy || (vx == vy && x < y);
                      });
    for (uint64_t t = 0; t < top; ++t) {
      const uint64_t idx = order[t];
      const double v = ElementAt(desc.dtype, data, base + idx);
      std::string s = IsFloating(desc.dtype) ? std::to_string(v)
                                             : std::to_string(static_cast<int64_t>(v));
      absl::StrAppend(&s, ":", idx);
      if (labels != nullptr && idx < labels->size()) absl::StrAppend(&s, ":", (*labels)[idx]);
      const uint32_t len = static_cast<uint32_t>(s.size());
      char prefix[4] = {static_cast<char>(len), static_cast<char>(len >> 8),
                        static_cast<char>(len >> 16), static_cast<char>(len >> 24)};
      raw->append(prefix, 4);
      raw->append(s);
    }
  }
  out->set_datatype("BYTES");
  out->clear_shape();
  if (batched) out->add_shape(static_cast<int64_t>(batch));
  out->add_shape(static_cast<int64_t>(top));
  return absl::OkStatus();
}

}  // namespace

absl::Status ResponseFiller::Finish(const ModelSignature& sig, absl::Status status) {
  if (status.ok() && !error_.ok()) status = error_;
  for (size_t i = 0; i < pending_.size() && status.ok(); ++i) {
    Pending& p = pending_[i];
    const OutputRoute& route = call_->outputs[p.index];
    if (route.classification > 0) {
      status = Classify(sig, p.index, p.desc, p.bytes, route.classification,
                        response_->mutable_outputs(p.output_slot),
                        response_->mutable_raw_output_contents(p.output_slot));
      continue;
    }
    // A CUDA region on another device than the one the model ran on.
    Device* device = route.shm->region->device();
    Stream& stream = device->stream(0);
    status = stream.CopyHostToDevice(route.shm->data(), p.bytes.data(), p.bytes.size());
    if (status.ok()) status = stream.Synchronize();
  }
  pending_.clear();
  if (!status.ok()) {
    response_->clear_outputs();
    response_->clear_raw_output_contents();
  }
  return status;
}

absl::Status ResponseFiller::FillFromHost(const ModelSignature& sig,
                                          absl::Span<const HostTensor> outputs) {
  for (size_t i = 0; i < outputs.size() && i < sig.outputs.size(); ++i) {
    if (outputs[i].data == nullptr || outputs[i].desc == nullptr) continue;
    const TensorDesc& desc = *outputs[i].desc;
    void* dst = AllocateOutput(static_cast<int>(i), sig.outputs[i], desc);
    if (dst != nullptr && desc.byte_size > 0) std::memcpy(dst, outputs[i].data, desc.byte_size);
  }
  return Finish(sig, absl::OkStatus());
}

}  // namespace inferd
