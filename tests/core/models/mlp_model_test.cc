#include "core/models/mlp_model.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/device/host_device.h"
#include "core/models/declared_signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing_models::Decode;
using testing_models::Encode;

// The hand-computed network: 2 -> 3 (relu) -> 1.
//   W0 = [[1, 2], [3, -4], [0.5, 0.5]], b0 = [0.5, -1, 0]
//   W1 = [[1, -1, 2]], b1 = [0.25]
// x = [1, 1]  -> h = relu([3.5, -2, 1])  = [3.5, 0, 1]   -> y = 5.75
// x = [2, -1] -> h = relu([0.5, 9, 0.5]) = [0.5, 9, 0.5] -> y = -7.25
// Every value is exact in fp16 and bf16 too.
const std::vector<float> kW0 = {1, 2, 3, -4, 0.5f, 0.5f};
const std::vector<float> kB0 = {0.5f, -1, 0};
const std::vector<float> kW1 = {1, -1, 2};
const std::vector<float> kB1 = {0.25f};

std::string TinyConfig(const char* dtype, const char* wire) {
  return absl::StrCat(R"(
backend: mlp
max_batch_size: 4
inputs: [{name: INPUT0, datatype: )", wire, R"(, dims: [-1, 2]}]
outputs: [{name: OUTPUT0, datatype: )", wire, R"(, dims: [-1, 1]}]
mlp:
  weights: w.safetensors
  dtype: )", dtype, R"(
  layers:
    - {weight: 0.weight, bias: 0.bias, activation: relu}
    - {weight: 2.weight, bias: 2.bias}
)");
}

struct Built {
  ModelConfigSpec spec;
  MlpNetwork network;
};

// Serializes the tiny network's weights in `dtype`, parses them back and
// builds the network from `yaml`.
absl::StatusOr<Built> BuildTiny(DataType dtype, const std::string& yaml) {
  const std::string w0 = Encode(dtype, kW0), b0 = Encode(dtype, kB0);
  const std::string w1 = Encode(dtype, kW1), b1 = Encode(dtype, kB1);
  std::vector<SafetensorsEntry> entries = {{"0.weight", dtype, {3, 2}, w0},
                                           {"0.bias", dtype, {3}, b0},
                                           {"2.weight", dtype, {1, 3}, w1},
                                           {"2.bias", dtype, {1}, b1}};
  absl::StatusOr<std::string> bytes = SerializeSafetensors(entries);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Parse(*bytes);
  if (!file.ok()) return file.status();
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(yaml);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<MlpNetwork> net = BuildMlpNetwork(*spec, **file);
  if (!net.ok()) return net.status();
  return Built{*spec, *std::move(net)};
}

struct DtypeCase {
  DataType dtype;
  const char* config_name;
};

void PrintTo(const DtypeCase& c, std::ostream* os) { *os << c.config_name; }

class MlpReferenceTest : public ::testing::TestWithParam<DtypeCase> {};

TEST_P(MlpReferenceTest, MatchesHandComputedNetwork) {
  const DataType dtype = GetParam().dtype;
  absl::StatusOr<Built> built =
      BuildTiny(dtype, TinyConfig(GetParam().config_name, std::string(DataTypeName(dtype)).c_str()));
  ASSERT_TRUE(built.ok()) << built.status();
  const std::string x = Encode(dtype, {1, 1, 2, -1});
  std::string y(2 * DataTypeSize(dtype), '\0');
  RunMlpReference(built->network, x.data(), y.data(), 2);
  EXPECT_EQ(Decode(dtype, y.data(), 2), (std::vector<float>{5.75f, -7.25f}));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MlpReferenceTest,
                         ::testing::Values(DtypeCase{DataType::kFp32, "fp32"},
                                           DtypeCase{DataType::kFp16, "fp16"},
                                           DtypeCase{DataType::kBf16, "bf16"}),
                         [](const auto& info) { return std::string(info.param.config_name); });

double GeluExact(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }
double GeluTanh(double v) {
  return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}

// One identity layer (W = I, no bias) followed by each activation.
std::vector<float> RunActivation(DataType dtype, const char* activation,
                                 const std::vector<float>& x) {
  const size_t n = x.size();
  std::vector<float> eye(n * n, 0.0f);
  for (size_t i = 0; i < n; ++i) eye[i * n + i] = 1.0f;
  const std::string w = Encode(dtype, eye);
  std::vector<SafetensorsEntry> entries = {
      {"w", dtype, {static_cast<int64_t>(n), static_cast<int64_t>(n)}, w}};
  auto file = SafetensorsFile::Parse(*SerializeSafetensors(entries));
  const std::string dt = dtype == DataType::kFp32 ? "fp32" : dtype == DataType::kFp16 ? "fp16" : "bf16";
  const std::string wire(DataTypeName(dtype));
  auto spec = ParseModelConfig(absl::StrCat(
      "backend: mlp\nmax_batch_size: 1\ninputs: [{name: X, datatype: ", wire, ", dims: [-1, ", n,
      "]}]\noutputs: [{name: Y, datatype: ", wire, ", dims: [-1, ", n,
      "]}]\nmlp: {weights: w.safetensors, dtype: ", dt, ", layers: [{weight: w, activation: ",
      activation, "}]}\n"));
  EXPECT_TRUE(spec.ok()) << spec.status();
  auto net = BuildMlpNetwork(*spec, **file);
  EXPECT_TRUE(net.ok()) << net.status();
  const std::string xb = Encode(dtype, x);
  std::string y(xb.size(), '\0');
  RunMlpReference(*net, xb.data(), y.data(), 1);
  return Decode(dtype, y.data(), n);
}

TEST(MlpReferenceTest, ActivationsMatchTheirDefinitions) {
  const std::vector<float> x = {-3.0f, -1.0f, -0.25f, 0.0f, 0.5f, 1.0f, 2.5f};
  std::vector<float> relu = RunActivation(DataType::kFp32, "relu", x);
  std::vector<float> gelu = RunActivation(DataType::kFp32, "gelu", x);
  std::vector<float> gelu_tanh = RunActivation(DataType::kFp32, "gelu_tanh", x);
  std::vector<float> none = RunActivation(DataType::kFp32, "none", x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(relu[i], std::max(0.0f, x[i]));
    EXPECT_NEAR(gelu[i], GeluExact(x[i]), 1e-6);
    EXPECT_NEAR(gelu_tanh[i], GeluTanh(x[i]), 1e-6);
    EXPECT_EQ(none[i], x[i]);
  }
  // The two GELUs differ measurably, so configs must say which one.
  EXPECT_GT(std::abs(gelu[0] - gelu_tanh[0]), 1e-4);
}

TEST(MlpReferenceTest, HalfPrecisionStaysWithinTolerance) {
  const std::vector<float> x = {-2.7f, -0.9f, 0.33f, 1.7f};
  std::vector<float> fp16 = RunActivation(DataType::kFp16, "gelu", x);
  std::vector<float> bf16 = RunActivation(DataType::kBf16, "gelu", x);
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = GeluExact(x[i]);
    EXPECT_NEAR(fp16[i], want, 2e-3 * std::max(1.0, std::abs(want))) << i;
    EXPECT_NEAR(bf16[i], want, 2e-2 * std::max(1.0, std::abs(want))) << i;
  }
}

struct BuildError {
  const char* label;
  std::string from;
  std::string to;
  std::string message;
};

void PrintTo(const BuildError& c, std::ostream* os) { *os << c.label; }

class MlpBuildErrorTest : public ::testing::TestWithParam<BuildError> {};

TEST_P(MlpBuildErrorTest, NamesTheLayerAndTensor) {
  const std::string yaml =
      absl::StrReplaceAll(TinyConfig("fp32", "FP32"), {{GetParam().from, GetParam().to}});
  absl::StatusOr<Built> built = BuildTiny(DataType::kFp32, yaml);
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(built.status().message()), StartsWith(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MlpBuildErrorTest,
    ::testing::Values(
        BuildError{"missing", "2.weight", "9.weight",
                   "mlp.layers[1].weight: tensor '9.weight' is not in mlp.weights"},
        BuildError{"missing_bias", "0.bias", "0.b",
                   "mlp.layers[0].bias: tensor '0.b' is not in mlp.weights"},
        BuildError{"wrong_dtype", "dtype: fp32", "dtype: fp16",
                   "inputs[0].datatype: FP32 differs"},  // caught by the config first
        BuildError{"bias_as_weight", "{weight: 2.weight, bias: 2.bias}",
                   "{weight: 2.bias, bias: 2.bias}",
                   "mlp.layers[1].weight: tensor '2.bias' has shape [1]"},
        BuildError{"chain", "- {weight: 0.weight, bias: 0.bias, activation: relu}\n",
                   "- {weight: 0.weight, bias: 0.bias, activation: relu}\n"
                   "    - {weight: 0.weight}\n",
                   "mlp.layers[1].weight: tensor '0.weight' has shape [3, 2]; expected "
                   "in_features 3"},
        BuildError{"bias_shape", "{weight: 2.weight, bias: 2.bias}",
                   "{weight: 2.weight, bias: 0.bias}",
                   "mlp.layers[1].bias: tensor '0.bias' has shape [3]; expected [1]"},
        BuildError{"input_features", "dims: [-1, 2]", "dims: [-1, 5]",
                   "inputs[0].dims[1]: 5 differs from the first layer's in_features (2)"},
        BuildError{"output_features", "dims: [-1, 1]", "dims: [-1, 7]",
                   "outputs[0].dims[1]: 7 differs from the last layer's out_features (1)"}),
    [](const auto& info) { return std::string(info.param.label); });

TEST(MlpBuildTest, RejectsWeightsOfAnotherDtype) {
  const std::string yaml = TinyConfig("fp16", "FP16");
  absl::StatusOr<Built> built = BuildTiny(DataType::kFp32, yaml);
  ASSERT_FALSE(built.ok());
  EXPECT_THAT(std::string(built.status().message()),
              StartsWith("mlp.layers[0].weight: tensor '0.weight' is F32 but mlp.dtype is F16"));
}

class MlpModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HostDeviceOptions o;
    o.capacity_bytes = 1 << 20;
    o.num_streams = 2;
    o.inline_when_idle = false;  // asynchronous, as a GPU is
    device_ = std::make_unique<HostDevice>(o);
    absl::StatusOr<Built> built = BuildTiny(DataType::kFp32, TinyConfig("fp32", "FP32"));
    ASSERT_TRUE(built.ok()) << built.status();
    absl::StatusOr<ModelSignature> sig = DeclaredSignature(built->spec, "tiny", "inferd_mlp");
    ASSERT_TRUE(sig.ok()) << sig.status();
    Device* devices[] = {device_.get()};
    absl::StatusOr<std::unique_ptr<MlpModel>> model =
        MlpModel::Create(*sig, built->network, devices, nullptr);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
  }

  std::unique_ptr<HostDevice> device_;
  std::unique_ptr<MlpModel> model_;
};

TEST_F(MlpModelTest, SignatureComesFromTheConfig) {
  const ModelSignature& sig = model_->signature();
  EXPECT_EQ(sig.name, "tiny");
  EXPECT_EQ(sig.platform, "inferd_mlp");
  EXPECT_EQ(sig.max_batch_size, 4);
  ASSERT_EQ(sig.inputs.size(), 1u);
  EXPECT_EQ(sig.inputs[0].shape, (std::vector<int64_t>{-1, 2}));
  EXPECT_EQ(sig.outputs[0].shape, (std::vector<int64_t>{-1, 1}));
}

TEST_F(MlpModelTest, ExecutesInStreamOrderOnHostDevice) {
  TensorDesc in{DataType::kFp32, {2, 2}, 16};
  TensorDesc out;
  ASSERT_TRUE(model_->Validate({&in, 1}, {}, {&out, 1}).ok());
  EXPECT_EQ(out.shape, (Shape{2, 1}));
  EXPECT_EQ(out.byte_size, 8u);
  void* x = *device_->AllocateRaw(16);
  void* y = *device_->AllocateRaw(8);
  const std::string xb = Encode(DataType::kFp32, {1, 1, 2, -1});
  Stream& stream = device_->stream(1);
  ASSERT_TRUE(stream.CopyHostToDevice(x, xb.data(), xb.size()).ok());
  DeviceTensor din{&in, x};
  DeviceTensor dout{&out, y};
  ASSERT_TRUE(model_->Execute(stream, {&din, 1}, {}, {&dout, 1}).ok());
  float host[2] = {0, 0};
  ASSERT_TRUE(stream.CopyDeviceToHost(host, y, 8).ok());
  ASSERT_TRUE(stream.Synchronize().ok());
  EXPECT_EQ(host[0], 5.75f);
  EXPECT_EQ(host[1], -7.25f);
  device_->FreeRaw(x);
  device_->FreeRaw(y);
}

TEST_F(MlpModelTest, ValidateRejectsBadRequests) {
  TensorDesc out;
  auto check = [&](TensorDesc in, const std::string& message) {
    absl::Status st = model_->Validate({&in, 1}, {}, {&out, 1});
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(std::string(st.message()), HasSubstr(message));
  };
  check({DataType::kFp32, {5, 2}, 40}, "inputs[0] (INPUT0).shape[0]: batch 5 is out of range [1, 4]");
  check({DataType::kFp32, {0, 2}, 0}, "batch 0 is out of range");
  check({DataType::kFp32, {2, 3}, 24}, "inputs[0] (INPUT0).shape: [2, 3] does not match [-1, 2]");
  check({DataType::kFp32, {4}, 16}, "does not match [-1, 2]");
  check({DataType::kFp16, {2, 2}, 8}, "inputs[0] (INPUT0): datatype FP16 but model 'tiny' takes FP32");
  check({DataType::kFp32, {2, 2}, 12}, "12 bytes do not match shape [2, 2]");
}

}  // namespace
}  // namespace inferd
