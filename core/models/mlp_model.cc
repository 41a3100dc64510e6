#include "core/models/mlp_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/device/host_kernels.h"
#include "core/models/declared_signature.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

constexpr int kRowBlock = 4;

float LoadElement(DataType dtype, const uint8_t* p) {
  switch (dtype) {
    case DataType::kFp16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return HalfToFloat(h);
    }
    case DataType::kBf16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return Bf16ToFloat(b);
    }
    default: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
  }
}

void StoreElement(DataType dtype, float v, uint8_t* p) {
  switch (dtype) {
    case DataType::kFp16: {
      const uint16_t h = FloatToHalf(v);
      std::memcpy(p, &h, 2);
      break;
    }
    case DataType::kBf16: {
      const uint16_t b = FloatToBf16(v);
      std::memcpy(p, &b, 2);
      break;
    }
    default:
      std::memcpy(p, &v, 4);
  }
}

// Rounds `v` to the nearest value representable in `dtype`.
float RoundTo(DataType dtype, float v) {
  switch (dtype) {
    case DataType::kFp16:
      return HalfToFloat(FloatToHalf(v));
    case DataType::kBf16:
      return Bf16ToFloat(FloatToBf16(v));
    default:
      return v;
  }
}

std::vector<float> Widen(const SafetensorsTensor& t) {
  const size_t size = DataTypeSize(t.dtype);
  std::vector<float> out(t.data.size() / size);
  for (size_t i = 0; i < out.size(); ++i) out[i] = LoadElement(t.dtype, t.data.data() + i * size);
  return out;
}

std::vector<uint8_t> Narrow(DataType dtype, const std::vector<float>& v) {
  const size_t size = DataTypeSize(dtype);
  std::vector<uint8_t> out(v.size() * size);
  for (size_t i = 0; i < v.size(); ++i) StoreElement(dtype, v[i], out.data() + i * size);
  return out;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

float Activate(MlpActivation act, float v) {
  switch (act) {
    case MlpActivation::kRelu:
      return v > 0.0f ? v : 0.0f;
    case MlpActivation::kGelu:
      return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
    case MlpActivation::kGeluTanh: {
      const float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v);
      return 0.5f * v * (1.0f + std::tanh(inner));
    }
    case MlpActivation::kNone:
      break;
  }
  return v;
}

// y[batch, out] = act(x[batch, in] W^T + b), rounded to `dtype`.
void DenseLayer(const MlpLayerWeights& l, DataType dtype, const float* x, float* y,
                int64_t batch) {
  const int64_t in = l.in_features;
  const int64_t out = l.out_features;
  for (int64_t b0 = 0; b0 < batch; b0 += kRowBlock) {
    const int64_t rows = std::min<int64_t>(kRowBlock, batch - b0);
    const float* xr[kRowBlock];
    for (int r = 0; r < kRowBlock; ++r) xr[r] = x + (b0 + std::min<int64_t>(r, rows - 1)) * in;
    for (int64_t o = 0; o < out; ++o) {
      const float* w = l.weight.data() + o * in;
      float acc[kRowBlock] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int64_t i = 0; i < in; ++i) {
        const float wi = w[i];
        for (int r = 0; r < kRowBlock; ++r) acc[r] += xr[r][i] * wi;
      }
      const float bias = l.bias.empty() ? 0.0f : l.bias[o];
      for (int64_t r = 0; r < rows; ++r) {
        y[(b0 + r) * out + o] = RoundTo(dtype, Activate(l.activation, acc[r] + bias));
      }
    }
  }
}

}  // namespace

absl::StatusOr<MlpNetwork> BuildMlpNetwork(const ModelConfigSpec& spec,
                                           const SafetensorsFile& weights) {
  MlpNetwork net;
  net.dtype = spec.mlp.dtype;
  const absl::string_view dtype_name = SafetensorsDtypeName(net.dtype);
  for (size_t i = 0; i < spec.mlp.layers.size(); ++i) {
    const MlpLayerConfig& lc = spec.mlp.layers[i];
    const std::string path = absl::StrCat("mlp.layers[", i, "]");
    const SafetensorsTensor* w = weights.Find(lc.weight);
    if (w == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".weight: tensor '", lc.weight, "' is not in mlp.weights"));
    }
    if (w->dtype != net.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".weight: tensor '", lc.weight, "' is ", SafetensorsDtypeName(w->dtype),
          " but mlp.dtype is ", dtype_name));
    }
    if (w->shape.size() != 2 || w->shape[0] < 1 || w->shape[1] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".weight: tensor '", lc.weight,
                                                     "' has shape ", ShapeText(w->shape),
                                                     "; expected [out_features, in_features]"));
    }
    MlpLayerWeights layer;
    layer.out_features = w->shape[0];
    layer.in_features = w->shape[1];
    layer.activation = lc.activation;
    if (i > 0 && layer.in_features != net.layers.back().out_features) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".weight: tensor '", lc.weight, "' has shape ", ShapeText(w->shape),
          "; expected in_features ", net.layers.back().out_features,
          " (the previous layer's out_features)"));
    }
    if (!lc.bias.empty()) {
      const SafetensorsTensor* b = weights.Find(lc.bias);
      if (b == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".bias: tensor '", lc.bias, "' is not in mlp.weights"));
      }
      if (b->dtype != net.dtype) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ".bias: tensor '", lc.bias, "' is ", SafetensorsDtypeName(b->dtype),
            " but mlp.dtype is ", dtype_name));
      }
      if (b->shape.size() != 1 || b->shape[0] != layer.out_features) {
        return absl::InvalidArgumentError(absl::StrCat(path, ".bias: tensor '", lc.bias,
                                                       "' has shape ", ShapeText(b->shape),
                                                       "; expected [", layer.out_features, "]"));
      }
      layer.bias = Widen(*b);
    }
    layer.weight = Widen(*w);
    net.layers.push_back(std::move(layer));
  }
  const int64_t in = net.layers.front().in_features;
  const int64_t out = net.layers.back().out_features;
  if (spec.inputs[0].dims[1] != in) {
    return absl::InvalidArgumentError(absl::StrCat("inputs[0].dims[1]: ", spec.inputs[0].dims[1],
                                                   " differs from the first layer's in_features (",
                                                   in, ")"));
  }
  if (spec.outputs[0].dims[1] != out) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outputs[0].dims[1]: ", spec.outputs[0].dims[1],
        " differs from the last layer's out_features (", out, ")"));
  }
  return net;
}

void RunMlpReference(const MlpNetwork& net, const void* x, void* y, int64_t batch) {
  int64_t widest = net.layers.front().in_features;
  for (const MlpLayerWeights& l : net.layers) widest = std::max(widest, l.out_features);
  std::vector<float> a(static_cast<size_t>(batch * widest));
  std::vector<float> b(a.size());
  const size_t size = DataTypeSize(net.dtype);
  const auto* xb = static_cast<const uint8_t*>(x);
  const int64_t n_in = batch * net.layers.front().in_features;
  for (int64_t i = 0; i < n_in; ++i) a[i] = LoadElement(net.dtype, xb + i * size);
  for (const MlpLayerWeights& l : net.layers) {
    DenseLayer(l, net.dtype, a.data(), b.data(), batch);
    a.swap(b);
  }
  auto* yb = static_cast<uint8_t*>(y);
  const int64_t n_out = batch * net.layers.back().out_features;
  for (int64_t i = 0; i < n_out; ++i) StoreElement(net.dtype, a[i], yb + i * size);
}

MlpModel::MlpModel(ModelSignature signature, MlpNetwork network,
                   std::shared_ptr<const MlpCudaLibrary> cuda)
    : signature_(std::move(signature)), network_(std::move(network)), cuda_(std::move(cuda)) {}

MlpModel::~MlpModel() {
  for (auto& [device, handle] : cuda_instances_) cuda_->Destroy(handle);
}

absl::StatusOr<std::unique_ptr<MlpModel>> MlpModel::Create(
    ModelSignature signature, MlpNetwork network, absl::Span<Device* const> devices,
    std::shared_ptr<const MlpCudaLibrary> cuda, MlpOptions mlp_options) {
  auto model = std::unique_ptr<MlpModel>(
      new MlpModel(std::move(signature), std::move(network), std::move(cuda)));
  const MlpNetwork& net = model->network_;
  std::vector<std::vector<uint8_t>> weights;  // narrowed copies, alive until uploaded
  std::vector<inferd_mlp_cuda_layer> layers;
  for (Device* device : devices) {
    if (device->info().kind != DeviceKind::kCuda || model->cuda_instances_.contains(device)) {
      continue;
    }
    if (model->cuda_ == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", model->signature_.name, "': device ", device->index(),
          " is a GPU but the mlp CUDA library is not loaded"));
    }
    if (layers.empty()) {
      for (const MlpLayerWeights& l : net.layers) {
        weights.push_back(Narrow(net.dtype, l.weight));
        const void* w = weights.back().data();
        const void* b = nullptr;
        if (!l.bias.empty()) {
          weights.push_back(Narrow(net.dtype, l.bias));
          b = weights.back().data();
        }
        const int32_t act = l.activation == MlpActivation::kRelu       ? INFERD_MLP_ACT_RELU
                            : l.activation == MlpActivation::kGelu     ? INFERD_MLP_ACT_GELU
                            : l.activation == MlpActivation::kGeluTanh ? INFERD_MLP_ACT_GELU_TANH
                                                                       : INFERD_MLP_ACT_NONE;
        layers.push_back({l.in_features, l.out_features, w, b, act});
      }
    }
    inferd_mlp_cuda_options options{};
    options.device_ordinal = device->info().ordinal;
    options.dtype = net.dtype == DataType::kFp16   ? INFERD_MLP_FP16
                    : net.dtype == DataType::kBf16 ? INFERD_MLP_BF16
                                                   : INFERD_MLP_FP32;
    options.num_layers = static_cast<int32_t>(layers.size());
    options.layers = layers.data();
    options.max_batch = model->signature_.max_batch_size;
    options.num_slots = device->num_streams();
    options.disable_graphs = mlp_options.cuda_graphs ? 0 : 1;
    absl::StatusOr<void*> handle = model->cuda_->Create(options);
    if (!handle.ok()) {
      return absl::Status(handle.status().code(),
                          absl::StrCat("model '", model->signature_.name, "' on device ",
                                       device->index(), ": ", handle.status().message()));
    }
    model->cuda_instances_[device] = *handle;
  }
  return model;
}

absl::StatusOr<inferd_mlp_cuda_stats> MlpModel::CudaStats(const Device& device) const {
  auto it = cuda_instances_.find(&device);
  if (it == cuda_instances_.end()) {
    return absl::NotFoundError(absl::StrCat("model '", signature_.name,
                                            "' has no CUDA instance on device ", device.index()));
  }
  return cuda_->Stats(it->second);
}

absl::Status MlpModel::Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                                absl::Span<TensorDesc> outputs) const {
  return ValidateDeclared(signature_, inputs, outputs);
}

absl::Status MlpModel::Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                               const ModelParams&,
                               absl::Span<const DeviceTensor> outputs) const {
  const int64_t batch = inputs[0].desc->shape[0];
  const void* x = inputs[0].data;
  void* y = outputs[0].data;
  Device& device = stream.device();
  if (device.info().kind == DeviceKind::kHost) {
    return EnqueueOnHostStream(stream, [this, x, y, batch]() {
      RunMlpReference(network_, x, y, batch);
      return absl::OkStatus();
    });
  }
  auto it = cuda_instances_.find(&device);
  if (it == cuda_instances_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", signature_.name, "' is not loaded on device ", device.index()));
  }
  return cuda_->Execute(it->second, stream.id(), stream.native_handle(), x, y, batch);
}

}  // namespace inferd
