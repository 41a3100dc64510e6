#include "core/models/torch_model.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/device/host_kernels.h"
#include "core/models/declared_signature.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

constexpr uint64_t kAlign = 256;

using TorchTensors = absl::InlinedVector<inferd_torch_tensor, 4>;

TorchTensors ToTorch(absl::Span<const DeviceTensor> tensors) {
  TorchTensors out;
  out.reserve(tensors.size());
  for (const DeviceTensor& t : tensors) {
    out.push_back(inferd_torch_tensor{static_cast<int32_t>(t.desc->dtype),
                                      static_cast<int32_t>(t.desc->shape.size()),
                                      t.desc->shape.data(), t.data, t.desc->byte_size});
  }
  return out;
}

absl::Status Prefixed(const absl::Status& status, absl::string_view prefix) {
  absl::Status out(status.code(), absl::StrCat(prefix, status.message()));
  return IsModelError(status) ? ModelError(std::move(out)) : out;
}

// The descriptions of one warmup batch of `batch` rows: -1 dims take
// `batch` at the batch position and 1 elsewhere.
absl::StatusOr<absl::InlinedVector<TensorDesc, 4>> WarmupInputs(const ModelSignature& sig,
                                                                int batch) {
  absl::InlinedVector<TensorDesc, 4> descs;
  for (const TensorSpec& spec : sig.inputs) {
    TensorDesc d;
    d.dtype = spec.dtype;
    for (size_t i = 0; i < spec.shape.size(); ++i) {
      const bool batch_dim = i == 0 && sig.max_batch_size > 0;
      d.shape.push_back(spec.shape[i] >= 0 ? spec.shape[i] : (batch_dim ? batch : 1));
    }
    uint64_t n = 0;
    if (!ShapeElementCount(d.shape, &n) || !CheckedMul(n, DataTypeSize(d.dtype), &d.byte_size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("torch.warmup: batch ", batch, " of input ", spec.name, " is too large"));
    }
    descs.push_back(std::move(d));
  }
  return descs;
}

}  // namespace

absl::string_view TorchPlatform(TorchFormat format) {
  return format == TorchFormat::kAoti ? "pytorch_aoti" : "pytorch_libtorch";
}

TorchModel::TorchModel(ModelSignature signature, std::shared_ptr<const TorchLibrary> library,
                       int instances, bool cuda_graphs)
    : signature_(std::move(signature)),
      library_(std::move(library)),
      instances_(instances),
      cuda_graphs_(cuda_graphs),
      error_prefix_(absl::StrCat("model '", signature_.name, "': ")) {}

TorchModel::~TorchModel() {
  workers_.clear();  // joins the instance threads before the handles go
  for (auto& [device, handle] : handles_) library_->Destroy(handle);
}

absl::StatusOr<std::unique_ptr<TorchModel>> TorchModel::Create(
    ModelSignature signature, const TorchModelOptions& options,
    absl::Span<Device* const> devices, std::shared_ptr<const TorchLibrary> library) {
  const std::string prefix = absl::StrCat("model '", signature.name, "': ");
  if (options.format == TorchFormat::kAoti && !library->supports_aoti()) {
    return absl::UnimplementedError(absl::StrCat(
        prefix, "torch.format: aoti needs a torch backend built against libtorch >= 2.8; this "
                "one has ",
        library->libtorch_version(), " (serve a TorchScript export, or rebuild the backend)"));
  }
  // Its instances are the executions it runs at once per device, unless
  // scheduling.max_executions_per_device says fewer.
  if (signature.max_executions_per_device == 0 ||
      signature.max_executions_per_device > options.instances_per_device) {
    signature.max_executions_per_device = options.instances_per_device;
  }
  auto model = std::unique_ptr<TorchModel>(
      new TorchModel(std::move(signature), std::move(library), options.instances_per_device,
                     options.cuda_graphs));
  const ModelSignature& sig = model->signature_;
  std::vector<const char*> input_names;
  std::vector<const char*> output_names;
  for (const TensorSpec& t : sig.inputs) input_names.push_back(t.name.c_str());
  for (const TensorSpec& t : sig.outputs) output_names.push_back(t.name.c_str());
  for (Device* device : devices) {
    if (model->handles_.contains(device)) continue;
    inferd_torch_load_options load{};
    load.struct_size = sizeof(load);
    load.path = options.file.c_str();
    load.model_name = sig.name.c_str();
    load.format = options.format == TorchFormat::kAoti ? INFERD_TORCH_FORMAT_AOTI
                                                        : INFERD_TORCH_FORMAT_TORCHSCRIPT;
    const bool cuda = device->info().kind == DeviceKind::kCuda;
    load.device_kind = cuda ? INFERD_TORCH_DEVICE_CUDA : INFERD_TORCH_DEVICE_HOST;
    load.device_ordinal = device->info().ordinal;
    // An AOTInductor runner runs one call at a time and makes the next
    // caller wait; one per stream lets every slot run the model at once.
    // With CUDA graphs each instance runs one call at a time anyway (its
    // graphs share buffers).
    load.cuda_graphs = cuda && options.cuda_graphs ? 1 : 0;
    load.num_instances = options.format == TorchFormat::kAoti && load.cuda_graphs == 0
                             ? std::max(options.instances_per_device, device->num_streams())
                             : options.instances_per_device;
    load.num_inputs = static_cast<int32_t>(input_names.size());
    load.input_names = input_names.data();
    load.num_outputs = static_cast<int32_t>(output_names.size());
    load.output_names = output_names.data();
    absl::StatusOr<void*> handle = model->library_->LoadModel(load);
    if (!handle.ok()) {
      return Prefixed(handle.status(), absl::StrCat(prefix, "device ", device->index(), ": "));
    }
    model->handles_[device] = *handle;
    if (cuda) {
      auto& workers = model->workers_[device];
      for (int i = 0; i < model->instances_; ++i) {
        workers.push_back(std::make_unique<WorkerThread>(absl::StrCat("torch-gpu", device->index())));
      }
    }
    if (absl::Status st = model->Warmup(*device, options.warmup); !st.ok()) {
      return Prefixed(st, absl::StrCat(prefix, "device ", device->index(), ": "));
    }
  }
  return model;
}

absl::Status TorchModel::Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                                  absl::Span<TensorDesc> outputs) const {
  return ValidateDeclared(signature_, inputs, outputs);
}

absl::Status TorchModel::Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                                 const ModelParams&,
                                 absl::Span<const DeviceTensor> outputs) const {
  return Run(stream, stream.id() % instances_, inputs, outputs, /*name_model=*/true);
}

absl::Status TorchModel::Run(Stream& stream, int instance, absl::Span<const DeviceTensor> inputs,
                             absl::Span<const DeviceTensor> outputs, bool name_model,
                             LibraryCall call) const {
  Device& device = stream.device();
  auto it = handles_.find(&device);
  if (it == handles_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", signature_.name, "' is not loaded on device ", device.index()));
  }
  void* handle = it->second;
  // The descriptions (and their shapes) outlive the call: the execution
  // keeps them until its completion callback, which runs after this.
  TorchTensors in = ToTorch(inputs);
  TorchTensors out = ToTorch(outputs);
  if (device.info().kind == DeviceKind::kHost) {
    return EnqueueOnHostStream(stream, [this, call, handle, instance, name_model,
                                        in = std::move(in), out = std::move(out)]() {
      absl::Status st = (library_.get()->*call)(handle, instance, nullptr, in, out);
      return st.ok() || !name_model ? st : Prefixed(st, error_prefix_);
    });
  }
  // Always this instance's thread: its per-thread caches stay warm.
  WorkerThread& worker = *workers_.at(&device)[static_cast<size_t>(instance)];
  absl::Status st = worker.Call([&] {
    return (library_.get()->*call)(handle, instance, stream.native_handle(), in, out);
  });
  return st.ok() || !name_model ? st : Prefixed(st, error_prefix_);
}

absl::Status TorchModel::Warmup(Device& device, std::vector<int> sizes) const {
  Stream& stream = device.stream(0);
  const bool record = cuda_graphs_ && device.info().kind == DeviceKind::kCuda;
  // Largest first: an instance's graphs share input buffers of the size
  // of the first one recorded.
  if (record) std::sort(sizes.begin(), sizes.end(), std::greater<int>());
  for (int batch : sizes) {
    absl::StatusOr<absl::InlinedVector<TensorDesc, 4>> in_descs = WarmupInputs(signature_, batch);
    if (!in_descs.ok()) return in_descs.status();
    absl::InlinedVector<TensorDesc, 4> out_descs(signature_.outputs.size());
    if (absl::Status st = Validate(*in_descs, ModelParams{}, absl::MakeSpan(out_descs)); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("torch.warmup: batch ", batch, ": ", st.message()));
    }
    uint64_t total = 0;
    for (const auto* descs : {&*in_descs, &out_descs}) {
      for (const TensorDesc& d : *descs) {
        if (!CheckedAdd(total, (d.byte_size + kAlign - 1) / kAlign * kAlign, &total)) {
          return absl::InvalidArgumentError(
              absl::StrCat("torch.warmup: batch ", batch, " is too large"));
        }
      }
    }
    absl::StatusOr<void*> buffer = device.AllocateRaw(total == 0 ? kAlign : total);
    if (!buffer.ok()) return buffer.status();
    auto* cursor = static_cast<uint8_t*>(*buffer);
    absl::InlinedVector<DeviceTensor, 4> inputs;
    absl::InlinedVector<DeviceTensor, 4> outputs;
    for (const TensorDesc& d : *in_descs) {
      inputs.push_back(DeviceTensor{&d, cursor});
      cursor += (d.byte_size + kAlign - 1) / kAlign * kAlign;
    }
    for (const TensorDesc& d : out_descs) {
      outputs.push_back(DeviceTensor{&d, cursor});
      cursor += (d.byte_size + kAlign - 1) / kAlign * kAlign;
    }
    absl::Status st = stream.Memset(*buffer, 0, total);
    absl::Status recorded;
    for (int instance = 0; instance < instances_ && st.ok() && recorded.ok(); ++instance) {
      st = Run(stream, instance, inputs, outputs, /*name_model=*/false);
      if (st.ok() && record) {
        recorded = Run(stream, instance, inputs, outputs, /*name_model=*/false,
                       &TorchLibrary::Capture);
      }
      absl::Status done = stream.Synchronize();
      if (st.ok()) st = done;
    }
    (void)stream.Synchronize();
    device.FreeRaw(*buffer);
    if (!recorded.ok()) {
      return absl::Status(recorded.code(), absl::StrCat("torch.cuda_graphs: batch ", batch, ": ",
                                                        recorded.message()));
    }
    if (!st.ok()) {
      const absl::StatusCode code =
          IsModelError(st) ? absl::StatusCode::kInvalidArgument : st.code();
      return absl::Status(code, absl::StrCat("torch.warmup: batch ", batch, ": ", st.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace inferd
