#include "core/models/plugin_model.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/device/host_kernels.h"
#include "core/models/declared_signature.h"
#include "core/models/dynamic_library.h"
#include "inferd/plugin_api.h"

namespace inferd {

// The plugin's C ABI numbers dtypes as DataType does.
static_assert(INFERD_DTYPE_BOOL == static_cast<int>(DataType::kBool));
static_assert(INFERD_DTYPE_UINT64 == static_cast<int>(DataType::kUint64));
static_assert(INFERD_DTYPE_INT64 == static_cast<int>(DataType::kInt64));
static_assert(INFERD_DTYPE_FP16 == static_cast<int>(DataType::kFp16));
static_assert(INFERD_DTYPE_BF16 == static_cast<int>(DataType::kBf16));
static_assert(INFERD_DTYPE_FP32 == static_cast<int>(DataType::kFp32));
static_assert(INFERD_DTYPE_BYTES == static_cast<int>(DataType::kBytes));

// A dlopen'ed plugin library. Immutable; thread-safe.
class PluginLibrary {
 public:
  static absl::StatusOr<std::shared_ptr<const PluginLibrary>> Load(const std::string& path) {
    absl::StatusOr<std::unique_ptr<DynamicLibrary>> dl =
        DynamicLibrary::Open(path, "plugin.library");
    if (!dl.ok()) return dl.status();
    std::shared_ptr<PluginLibrary> lib(new PluginLibrary(*std::move(dl)));
    auto version = lib->dl_->Find<inferd_plugin_api_version_fn>("inferd_plugin_api_version");
    lib->create = lib->dl_->Find<inferd_plugin_create_fn>("inferd_plugin_create");
    lib->execute = lib->dl_->Find<inferd_plugin_execute_fn>("inferd_plugin_execute");
    lib->destroy = lib->dl_->Find<inferd_plugin_destroy_fn>("inferd_plugin_destroy");
    lib->last_error = lib->dl_->Find<inferd_plugin_last_error_fn>("inferd_plugin_last_error");
    if (version == nullptr || lib->create == nullptr || lib->execute == nullptr ||
        lib->destroy == nullptr || lib->last_error == nullptr) {
      return absl::FailedPreconditionError(
          "plugin.library does not export inferd_plugin_api_version, inferd_plugin_create, "
          "inferd_plugin_execute, inferd_plugin_destroy and inferd_plugin_last_error");
    }
    const int32_t v = version();
    if (v != INFERD_PLUGIN_API_VERSION) {
      return absl::FailedPreconditionError(absl::StrCat("plugin.library has plugin API version ",
                                                        v, "; this inferd speaks version ",
                                                        INFERD_PLUGIN_API_VERSION));
    }
    return std::shared_ptr<const PluginLibrary>(std::move(lib));
  }

  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  // Converts a plugin return code (after a call on this thread) to a status.
  absl::Status ToStatus(int32_t code, absl::string_view context) const {
    if (code == INFERD_PLUGIN_OK) return absl::OkStatus();
    const char* message = last_error();
    const std::string text =
        absl::StrCat(context, ": ", message != nullptr && *message != '\0' ? message : "failed");
    switch (code) {
      case INFERD_PLUGIN_INVALID_ARGUMENT:
        return absl::InvalidArgumentError(text);
      case INFERD_PLUGIN_UNSUPPORTED:
        return absl::FailedPreconditionError(text);
      case INFERD_PLUGIN_RESOURCE_EXHAUSTED:
        return absl::ResourceExhaustedError(text);
      default:
        return absl::InternalError(text);
    }
  }

  inferd_plugin_create_fn create = nullptr;
  inferd_plugin_execute_fn execute = nullptr;
  inferd_plugin_destroy_fn destroy = nullptr;
  inferd_plugin_last_error_fn last_error = nullptr;

 private:
  explicit PluginLibrary(std::unique_ptr<DynamicLibrary> dl) : dl_(std::move(dl)) {}
  const std::unique_ptr<DynamicLibrary> dl_;
};

namespace {

// The tensors of one plugin call; heap-allocated so pointers stay put.
struct PluginCall {
  std::vector<inferd_tensor> inputs;
  std::vector<inferd_tensor> outputs;
  std::vector<std::vector<int64_t>> shapes;
};

std::unique_ptr<PluginCall> MakeCall(const ModelSignature& sig,
                                     absl::Span<const DeviceTensor> inputs,
                                     absl::Span<const DeviceTensor> outputs) {
  auto call = std::make_unique<PluginCall>();
  call->shapes.reserve(inputs.size() + outputs.size());
  auto fill = [&](const TensorSpec& spec, const DeviceTensor& t) {
    call->shapes.emplace_back(t.desc->shape.begin(), t.desc->shape.end());
    return inferd_tensor{spec.name.c_str(),
                         static_cast<int32_t>(t.desc->dtype),
                         static_cast<int32_t>(t.desc->shape.size()),
                         call->shapes.back().data(),
                         t.data,
                         t.desc->byte_size};
  };
  for (size_t i = 0; i < inputs.size(); ++i) call->inputs.push_back(fill(sig.inputs[i], inputs[i]));
  for (size_t i = 0; i < outputs.size(); ++i) {
    call->outputs.push_back(fill(sig.outputs[i], outputs[i]));
  }
  return call;
}

}  // namespace

PluginModel::PluginModel(ModelSignature signature, std::shared_ptr<const PluginLibrary> library)
    : signature_(std::move(signature)), library_(std::move(library)) {}

PluginModel::~PluginModel() {
  for (auto& [device, state] : states_) library_->destroy(state);
}

absl::StatusOr<std::unique_ptr<PluginModel>> PluginModel::Create(
    ModelSignature signature, const PluginModelOptions& options,
    absl::Span<Device* const> devices) {
  absl::StatusOr<std::shared_ptr<const PluginLibrary>> library =
      PluginLibrary::Load(options.library_path);
  if (!library.ok()) {
    return absl::Status(library.status().code(), absl::StrCat("model '", signature.name, "': ",
                                                              library.status().message()));
  }
  auto model =
      std::unique_ptr<PluginModel>(new PluginModel(std::move(signature), *std::move(library)));
  const ModelSignature& sig = model->signature_;
  std::vector<inferd_plugin_parameter> params;
  for (const auto& [key, value] : options.parameters) params.push_back({key.c_str(), value.c_str()});
  for (Device* device : devices) {
    if (model->states_.contains(device)) continue;
    inferd_plugin_config config{};
    config.struct_size = sizeof(config);
    config.device_kind =
        device->info().kind == DeviceKind::kCuda ? INFERD_DEVICE_CUDA : INFERD_DEVICE_HOST;
    config.device_ordinal = device->info().ordinal;
    config.device_index = device->index();
    config.model_name = sig.name.c_str();
    config.model_version = sig.version.c_str();
    config.model_dir = options.model_dir.c_str();
    config.max_batch_size = sig.max_batch_size;
    config.num_parameters = static_cast<int32_t>(params.size());
    config.parameters = params.data();
    void* state = nullptr;
    const int32_t code = model->library_->create(&config, &state);
    if (code != INFERD_PLUGIN_OK) {
      return model->library_->ToStatus(
          code, absl::StrCat("model '", sig.name, "' on device ", device->index()));
    }
    model->states_[device] = state;
  }
  return model;
}

absl::Status PluginModel::Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                                   absl::Span<TensorDesc> outputs) const {
  return ValidateDeclared(signature_, inputs, outputs);
}

absl::Status PluginModel::Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                                  const ModelParams&,
                                  absl::Span<const DeviceTensor> outputs) const {
  Device& device = stream.device();
  auto it = states_.find(&device);
  if (it == states_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("model '", signature_.name,
                                                      "' is not loaded on device ",
                                                      device.index()));
  }
  void* state = it->second;
  std::unique_ptr<PluginCall> call = MakeCall(signature_, inputs, outputs);
  if (device.info().kind == DeviceKind::kHost) {
    return EnqueueOnHostStream(stream, [this, state, call = std::move(call)]() {
      const int32_t code = library_->execute(
          state, nullptr, call->inputs.data(), static_cast<int32_t>(call->inputs.size()),
          call->outputs.data(), static_cast<int32_t>(call->outputs.size()));
      return library_->ToStatus(code, absl::StrCat("model '", signature_.name, "'"));
    });
  }
  const int32_t code = library_->execute(
      state, stream.native_handle(), call->inputs.data(), static_cast<int32_t>(call->inputs.size()),
      call->outputs.data(), static_cast<int32_t>(call->outputs.size()));
  return library_->ToStatus(code, absl::StrCat("model '", signature_.name, "'"));
}

}  // namespace inferd
