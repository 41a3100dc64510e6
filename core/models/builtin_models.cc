// Builtin models that need no files: identity, add and scale. They run on
// any device through its Kernels, so ModelInfer does real device work.
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/models/model.h"

namespace inferd {
namespace {

// Builtins accept every numeric type (identity also BYTES); FP32 is what
// metadata declares so that data-generating tools have a concrete type.
TensorSpec AnySpec(const char* name) { return TensorSpec{name, DataType::kFp32, {-1}}; }

ModelSignature MakeSignature(const char* name, int num_inputs) {
  ModelSignature s;
  s.name = name;
  s.platform = "inferd_builtin";
  for (int i = 0; i < num_inputs; ++i) s.inputs.push_back(AnySpec(i == 0 ? "INPUT0" : "INPUT1"));
  s.outputs.push_back(AnySpec("OUTPUT0"));
  return s;
}

absl::Status RequireNumeric(const ModelSignature& sig, int input, DataType dtype) {
  if (dtype == DataType::kBytes || dtype == DataType::kInvalid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs[", input, "] (", sig.inputs[input].name, "): datatype ", DataTypeName(dtype),
        " is not supported by model '", sig.name, "' (numeric types and BOOL only)"));
  }
  return absl::OkStatus();
}

uint64_t ElementCount(const TensorDesc& d) {
  uint64_t n = 1;
  for (int64_t v : d.shape) n *= static_cast<uint64_t>(v);
  return n;
}

class IdentityModel final : public Model {
 public:
  IdentityModel() : sig_(MakeSignature("identity", 1)) {}
  const ModelSignature& signature() const override { return sig_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                        absl::Span<TensorDesc> outputs) const override {
    outputs[0] = inputs[0];
    return absl::OkStatus();
  }
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs, const ModelParams&,
                       absl::Span<const DeviceTensor> outputs) const override {
    return stream.CopyDeviceToDevice(outputs[0].data, inputs[0].data, inputs[0].desc->byte_size);
  }
  void ExecuteMany(Stream& stream, absl::Span<DeviceCall> calls) const override {
    ExecuteIdentityMany(stream, calls);
  }

 private:
  ModelSignature sig_;
};

class AddModel final : public Model {
 public:
  AddModel() : sig_(MakeSignature("add", 2)) {}
  const ModelSignature& signature() const override { return sig_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                        absl::Span<TensorDesc> outputs) const override {
    for (int i = 0; i < 2; ++i) {
      if (absl::Status st = RequireNumeric(sig_, i, inputs[i].dtype); !st.ok()) return st;
    }
    if (inputs[1].dtype != inputs[0].dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[1] (INPUT1): datatype ", DataTypeName(inputs[1].dtype),
          " differs from INPUT0's ", DataTypeName(inputs[0].dtype)));
    }
    if (inputs[1].shape != inputs[0].shape) {
      return absl::InvalidArgumentError("inputs[1] (INPUT1): shape differs from INPUT0's shape");
    }
    outputs[0] = inputs[0];
    return absl::OkStatus();
  }
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs, const ModelParams&,
                       absl::Span<const DeviceTensor> outputs) const override {
    return stream.device().kernels().Add(stream, inputs[0].desc->dtype, inputs[0].data,
                                         inputs[1].data, outputs[0].data,
                                         ElementCount(*inputs[0].desc));
  }

 private:
  ModelSignature sig_;
};

class ScaleModel final : public Model {
 public:
  static constexpr double kDefaultFactor = 2.0;
  ScaleModel() : sig_(MakeSignature("scale", 1)) {}
  const ModelSignature& signature() const override { return sig_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                        absl::Span<TensorDesc> outputs) const override {
    if (absl::Status st = RequireNumeric(sig_, 0, inputs[0].dtype); !st.ok()) return st;
    outputs[0] = inputs[0];
    return absl::OkStatus();
  }
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                       const ModelParams& params,
                       absl::Span<const DeviceTensor> outputs) const override {
    const double factor = params.has_factor ? params.factor : kDefaultFactor;
    return stream.device().kernels().Scale(stream, inputs[0].desc->dtype, inputs[0].data, factor,
                                           outputs[0].data, ElementCount(*inputs[0].desc));
  }

 private:
  ModelSignature sig_;
};

}  // namespace

std::vector<std::shared_ptr<const Model>> BuiltinModels() {
  return {std::make_shared<IdentityModel>(), std::make_shared<AddModel>(),
          std::make_shared<ScaleModel>()};
}

}  // namespace inferd
