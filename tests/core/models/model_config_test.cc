#include "core/config/model_config.h"

#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kMlp[] = R"(
name: tiny
version: "2"
backend: mlp
max_batch_size: 8
dynamic_batching:
  preferred_batch_sizes: [2, 4]
  max_queue_delay_us: 100
inputs:
  - {name: X, datatype: FP32, dims: [-1, 4]}
outputs:
  - {name: Y, datatype: FP32, dims: [-1, 2]}
mlp:
  weights: w.safetensors
  dtype: fp32
  layers:
    - {weight: 0.weight, bias: 0.bias, activation: relu}
    - {weight: 2.weight, activation: gelu_tanh}
)";

constexpr char kPlugin[] = R"(
backend: plugin
inputs:
  - {name: A, datatype: INT32, dims: [3, -1]}
  - {name: B, datatype: BYTES, dims: [-1]}
outputs:
  - {name: C, datatype: FP16, dims: [3]}
plugin:
  library: libp.so
  parameters: {zeta: last, alpha: 1, mid: "x y"}
)";

constexpr char kTorch[] = R"(
backend: torch
max_batch_size: 16
inputs:
  - {name: image, datatype: FP16, dims: [-1, 3, 224, 224]}
outputs:
  - {name: logits, datatype: FP16, dims: [-1, 1000]}
torch:
  file: resnet50.pt2
)";

std::string Edit(const std::string& base, const std::string& from, const std::string& to) {
  std::string out = absl::StrReplaceAll(base, {{from, to}});
  EXPECT_NE(out, base) << "edit did not apply: " << from;
  return out;
}

TEST(ModelConfigTest, ParsesMlpConfig) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kMlp);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "tiny");
  EXPECT_EQ(spec->version, "2");
  EXPECT_EQ(spec->backend, ModelBackend::kMlp);
  EXPECT_EQ(spec->max_batch_size, 8);
  ASSERT_TRUE(spec->has_dynamic_batching);
  EXPECT_EQ(spec->dynamic_batching.preferred_batch_sizes, (std::vector<int>{2, 4}));
  EXPECT_EQ(spec->dynamic_batching.max_queue_delay_us, 100);
  ASSERT_EQ(spec->inputs.size(), 1u);
  EXPECT_EQ(spec->inputs[0].name, "X");
  EXPECT_EQ(spec->inputs[0].dtype, DataType::kFp32);
  EXPECT_EQ(spec->inputs[0].dims, (std::vector<int64_t>{-1, 4}));
  EXPECT_EQ(spec->mlp.weights, "w.safetensors");
  EXPECT_EQ(spec->mlp.dtype, DataType::kFp32);
  ASSERT_EQ(spec->mlp.layers.size(), 2u);
  EXPECT_EQ(spec->mlp.layers[0].bias, "0.bias");
  EXPECT_EQ(spec->mlp.layers[0].activation, MlpActivation::kRelu);
  EXPECT_EQ(spec->mlp.layers[1].bias, "");
  EXPECT_EQ(spec->mlp.layers[1].activation, MlpActivation::kGeluTanh);
}

TEST(ModelConfigTest, MlpCudaGraphsDefaultOnAndCanBeTurnedOff) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kMlp);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->mlp.cuda_graphs);
  spec = ParseModelConfig(Edit(kMlp, "dtype: fp32", "dtype: fp32\n  cuda_graphs: false"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->mlp.cuda_graphs);
}

TEST(ModelConfigTest, SchedulingPreemptibleDefaultsOffAndCanBeTurnedOn) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kMlp);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->scheduling.preemptible);
  spec = ParseModelConfig(Edit(kMlp, "inputs:\n", "scheduling:\n  preemptible: true\ninputs:\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->scheduling.preemptible);
  spec = ParseModelConfig(Edit(kMlp, "inputs:\n", "scheduling:\ninputs:\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->scheduling.preemptible);
}

// scheduling.max_executions_per_device: 0 (the backend's limit) unless set.
TEST(ModelConfigTest, SchedulingMaxExecutionsPerDevice) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kMlp);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->scheduling.max_executions_per_device, 0);
  spec = ParseModelConfig(
      Edit(kMlp, "inputs:\n", "scheduling: {max_executions_per_device: 2}\ninputs:\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->scheduling.max_executions_per_device, 2);
}

// scheduling.overlap_executions: true unless set.
TEST(ModelConfigTest, SchedulingOverlapExecutions) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kMlp);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->scheduling.overlap_executions);
  spec = ParseModelConfig(
      Edit(kMlp, "inputs:\n", "scheduling: {overlap_executions: false}\ninputs:\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->scheduling.overlap_executions);
}

// scheduling.next_batch_lead_us: 100 unless set; only for a model whose
// executions do not overlap.
TEST(ModelConfigTest, SchedulingNextBatchLead) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kMlp);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->scheduling.next_batch_lead_us, 100);
  spec = ParseModelConfig(Edit(
      kMlp, "inputs:\n",
      "scheduling: {overlap_executions: false, next_batch_lead_us: 350}\ninputs:\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->scheduling.next_batch_lead_us, 350);
}

TEST(ModelConfigTest, ParsesPluginConfigWithDefaultsAndSortedParameters) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kPlugin);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "");
  EXPECT_EQ(spec->version, "1");
  EXPECT_EQ(spec->max_batch_size, 0);
  EXPECT_FALSE(spec->has_dynamic_batching);
  EXPECT_EQ(spec->plugin.library, "libp.so");
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(spec->plugin.parameters,
            (std::vector<P>{{"alpha", "1"}, {"mid", "x y"}, {"zeta", "last"}}));
  EXPECT_EQ(spec->inputs[1].dtype, DataType::kBytes);
}

TEST(ModelConfigTest, ParsesTorchConfigWithDefaults) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kTorch);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->backend, ModelBackend::kTorch);
  EXPECT_EQ(spec->torch.file, "resnet50.pt2");
  EXPECT_EQ(spec->torch.format, TorchFormat::kAoti);
  EXPECT_EQ(spec->torch.instances_per_device, 1);
  EXPECT_FALSE(spec->torch.cuda_graphs);
  // Every batch size the batcher may form (max_batch_size 16).
  std::vector<int> all;
  for (int b = 1; b <= 16; ++b) all.push_back(b);
  EXPECT_EQ(spec->torch.warmup, all);
}

// `warmup: all` runs every size; above kMaxTorchWarmupAll it is refused,
// and the default falls back to 1 and max_batch_size.
TEST(ModelConfigTest, TorchWarmupAllAndItsLimit) {
  absl::StatusOr<ModelConfigSpec> spec =
      ParseModelConfig(Edit(kTorch, "file: resnet50.pt2", "file: a.pt2\n  warmup: all"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->torch.warmup.size(), 16u);
  EXPECT_EQ(spec->torch.warmup.back(), 16);
  const std::string big = Edit(kTorch, "max_batch_size: 16", "max_batch_size: 1024");
  EXPECT_EQ(ParseModelConfig(big)->torch.warmup, (std::vector<int>{1, 1024}));
  absl::StatusOr<ModelConfigSpec> refused =
      ParseModelConfig(Edit(big, "file: resnet50.pt2", "file: a.pt2\n  warmup: all"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("torch.warmup: all would run 1024 batch sizes"),
            std::string::npos)
      << refused.status();
}

// Verifies that the format follows the file name unless set, and that the
// warmup list is taken as written ([] runs none).
TEST(ModelConfigTest, TorchFormatAndWarmupAsWritten) {
  const std::string ts = Edit(kTorch, "file: resnet50.pt2", "file: model.pt");
  EXPECT_EQ(ParseModelConfig(ts)->torch.format, TorchFormat::kTorchScript);
  const std::string forced = Edit(kTorch, "file: resnet50.pt2",
                                  "file: weird.bin\n  format: torchscript\n  warmup: []\n"
                                  "  instances_per_device: 3");
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(forced);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->torch.format, TorchFormat::kTorchScript);
  EXPECT_TRUE(spec->torch.warmup.empty());
  EXPECT_EQ(spec->torch.instances_per_device, 3);
  EXPECT_TRUE(ParseModelConfig(Edit(kTorch, "file: resnet50.pt2",
                                    "file: a.pt2\n  cuda_graphs: true\n  warmup: [1, 8]"))
                  ->torch.cuda_graphs);
  const std::string unbatched = Edit(kTorch, "max_batch_size: 16\n", "");
  EXPECT_EQ(ParseModelConfig(Edit(unbatched, "[-1, 3, 224, 224]", "[1, 3, 224, 224]"))
                ->torch.warmup,
            (std::vector<int>{1}));
}

TEST(ModelConfigTest, MlpDefaultsToFp32AndNoActivation) {
  std::string yaml = Edit(kMlp, "  dtype: fp32\n", "");
  yaml = Edit(yaml, ", activation: relu}", "}");
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(yaml);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->mlp.dtype, DataType::kFp32);
  EXPECT_EQ(spec->mlp.layers[0].activation, MlpActivation::kNone);
}

struct ErrorCase {
  const char* label;
  std::string yaml;
  std::string message_start;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.label; }

class ModelConfigErrorTest : public ::testing::TestWithParam<ErrorCase> {};

// Verifies that each bad config is INVALID_ARGUMENT whose message starts
// with the key path of the offending value.
TEST_P(ModelConfigErrorTest, NamesTheKeyPath) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(GetParam().yaml);
  ASSERT_FALSE(spec.ok()) << GetParam().label;
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()), StartsWith(GetParam().message_start));
}

std::vector<ErrorCase> ErrorCases() {
  const std::string m = kMlp;
  return {
      {"unknown top key", m + "extra: 1\n", "extra: unknown key"},
      {"unknown nested key", Edit(m, "dtype: fp32", "dtype: fp32\n  workers: 2"),
       "mlp.workers: unknown key"},
      {"quoted bool", Edit(m, "dtype: fp32", "dtype: fp32\n  cuda_graphs: \"false\""),
       "mlp.cuda_graphs: expected true or false, got \"false\""},
      {"bool as text", Edit(m, "dtype: fp32", "dtype: fp32\n  cuda_graphs: off"),
       "mlp.cuda_graphs: expected true or false"},
      {"bad activation", Edit(m, "gelu_tanh", "tanh"),
       "mlp.layers[1].activation: \"tanh\" is not one of none, relu, gelu, gelu_tanh"},
      {"zero dim", Edit(m, "[-1, 4]", "[-1, 0]"), "inputs[0].dims[1]: 0 is out of range"},
      {"dim below -1", Edit(m, "[-1, 4]", "[-2, 4]"), "inputs[0].dims[0]: -2 is out of range"},
      {"int as text", Edit(m, "max_batch_size: 8", "max_batch_size: eight"),
       "max_batch_size: expected an integer, got \"eight\""},
      {"quoted int", Edit(m, "max_batch_size: 8", "max_batch_size: \"8\""),
       "max_batch_size: expected an integer"},
      {"batch too big", Edit(m, "max_batch_size: 8", "max_batch_size: 99999999"),
       "max_batch_size: 99999999 is out of range"},
      {"bad datatype", Edit(m, "{name: X, datatype: FP32", "{name: X, datatype: FLOAT"),
       "inputs[0].datatype: \"FLOAT\" is not a datatype"},
      {"no backend", Edit(m, "backend: mlp\n", ""), "backend: required"},
      {"bad backend", Edit(m, "backend: mlp", "backend: onnx"), "backend: \"onnx\" is not one of"},
      {"missing section", Edit(kPlugin, "plugin:\n  library: libp.so\n  parameters: "
                                        "{zeta: last, alpha: 1, mid: \"x y\"}\n", ""),
       "plugin: required with backend: plugin"},
      {"wrong section", m + "plugin: {library: x.so}\n", "plugin: only allowed with backend: plugin"},
      {"preferred above max", Edit(m, "[2, 4]", "[2, 16]"),
       "dynamic_batching.preferred_batch_sizes[1]: 16 is larger than max_batch_size"},
      {"preferred unsorted", Edit(m, "[2, 4]", "[4, 2]"),
       "dynamic_batching.preferred_batch_sizes[1]: sizes must be strictly increasing"},
      {"delay negative", Edit(m, "max_queue_delay_us: 100", "max_queue_delay_us: -1"),
       "dynamic_batching.max_queue_delay_us: -1 is out of range"},
      {"batching without batch", Edit(kPlugin, "backend: plugin", "backend: plugin\n"
                                                                  "dynamic_batching: {}"),
       "dynamic_batching: needs max_batch_size >= 1"},
      {"max executions out of range",
       Edit(m, "inputs:\n", "scheduling: {max_executions_per_device: 65}\ninputs:\n"),
       "scheduling.max_executions_per_device: 65 is out of range [0, 64]"},
      {"preemptible not bool", Edit(m, "inputs:\n", "scheduling: {preemptible: yes}\ninputs:\n"),
       "scheduling.preemptible: expected true or false, got \"yes\""},
      {"overlap not bool", Edit(m, "inputs:\n", "scheduling: {overlap_executions: 2}\ninputs:\n"),
       "scheduling.overlap_executions: expected true or false, got \"2\""},
      {"lead with overlapping executions",
       Edit(m, "inputs:\n", "scheduling: {next_batch_lead_us: 100}\ninputs:\n"),
       "scheduling.next_batch_lead_us: applies only with scheduling.overlap_executions: false"},
      {"lead out of range",
       Edit(m, "inputs:\n",
            "scheduling: {overlap_executions: false, next_batch_lead_us: -1}\ninputs:\n"),
       "scheduling.next_batch_lead_us: -1 is out of range [0, 1000000]"},
      {"scheduling unknown key", Edit(m, "inputs:\n", "scheduling: {priority: 1}\ninputs:\n"),
       "scheduling.priority: unknown key"},
      {"scheduling not map", Edit(m, "inputs:\n", "scheduling: [true]\ninputs:\n"),
       "scheduling: expected a map, got a list"},
      {"duplicate key", Edit(m, "version: \"2\"", "version: \"2\"\nversion: \"3\""),
       "version: duplicate key"},
      {"duplicate tensor", Edit(kPlugin, "{name: B,", "{name: A,"),
       "inputs[1].name: \"A\" is used twice"},
      {"layer without weight", Edit(m, "{weight: 2.weight, ", "{"), "mlp.layers[1].weight: required"},
      {"empty layers", Edit(m, "  layers:\n    - {weight: 0.weight, bias: 0.bias, activation: "
                               "relu}\n    - {weight: 2.weight, activation: gelu_tanh}\n",
                            "  layers: []\n"),
       "mlp.layers: has 0 layers"},
      {"parameter not scalar", Edit(kPlugin, "mid: \"x y\"", "mid: [1, 2]"),
       "plugin.parameters.mid: expected a string, got a list"},
      {"mlp rank", Edit(m, "[-1, 4]", "[-1, 4, 1]"), "inputs[0].dims: backend mlp expects"},
      {"mlp fixed batch", Edit(m, "[-1, 2]", "[8, 2]"), "outputs[0].dims: backend mlp expects"},
      {"mlp dtype mismatch", Edit(m, "{name: Y, datatype: FP32", "{name: Y, datatype: FP16"),
       "outputs[0].datatype: FP16 differs from mlp.dtype (FP32)"},
      {"mlp two inputs", Edit(m, "inputs:\n", "inputs:\n  - {name: Z, datatype: FP32, dims: [-1, 1]}\n"),
       "inputs: has 2 tensors; backend mlp takes exactly 1"},
      {"mlp unbatched", Edit(m, "max_batch_size: 8\ndynamic_batching:\n  preferred_batch_sizes: "
                                "[2, 4]\n  max_queue_delay_us: 100\n", ""),
       "max_batch_size: 0 is out of range; backend mlp needs >= 1"},
      {"bad mlp dtype", Edit(m, "dtype: fp32", "dtype: float"), "mlp.dtype: \"float\" is not one of"},
      {"bad name", Edit(m, "name: tiny", "name: ../etc"), "name: \"../etc\" is not a valid name"},
      {"bad version", Edit(m, "version: \"2\"", "version: a/b"), "version: \"a/b\" is not a valid"},
      {"empty weights", Edit(m, "weights: w.safetensors", "weights: \"\""),
       "mlp.weights: must not be empty"},
      {"not a map", "- a\n- b\n", "(top level): expected a map, got a list"},
      {"inputs not list", Edit(m, "inputs:\n  - {name: X, datatype: FP32, dims: [-1, 4]}",
                               "inputs: {name: X}"),
       "inputs: expected a list, got a map"},
      {"syntax error", "name: [unclosed\n", "YAML syntax error at line"},
      {"two documents", m + "---\nname: other\n", "config.yaml holds 2 YAML documents"},
      {"torch without file", Edit(kTorch, "file: resnet50.pt2", "format: aoti"),
       "torch.file: required"},
      {"torch unknown extension", Edit(kTorch, "resnet50.pt2", "resnet50.onnx"),
       "torch.format: required: \"resnet50.onnx\" ends in neither"},
      {"torch bad format", Edit(kTorch, "file: resnet50.pt2", "file: a.pt2\n  format: onnx"),
       "torch.format: \"onnx\" is not one of aoti, torchscript"},
      {"torch instances", Edit(kTorch, "file: resnet50.pt2",
                               "file: a.pt2\n  instances_per_device: 0"),
       "torch.instances_per_device: 0 is out of range [1, 16]"},
      {"torch warmup above max", Edit(kTorch, "file: resnet50.pt2", "file: a.pt2\n  warmup: [1, 32]"),
       "torch.warmup[1]: 32 is larger than max_batch_size (16)"},
      {"torch warmup not list", Edit(kTorch, "file: resnet50.pt2", "file: a.pt2\n  warmup: 8"),
       "torch.warmup: expected a list of batch sizes or all"},
      {"torch bytes input", Edit(kTorch, "datatype: FP16, dims: [-1, 3", "datatype: BYTES, dims: [-1, 3"),
       "inputs[0].datatype: BYTES has no torch tensor type"},
      {"torch uint32 output", Edit(kTorch, "{name: logits, datatype: FP16", "{name: logits, datatype: UINT32"),
       "outputs[0].datatype: UINT32 has no torch tensor type"},
      {"torch section with mlp", m + "torch: {file: a.pt}\n", "torch: only allowed with backend: torch"},
      {"torch graphs not bool", Edit(kTorch, "file: resnet50.pt2", "file: a.pt2\n  cuda_graphs: 2"),
       "torch.cuda_graphs: expected true or false"},
      {"torch graphs without warmup",
       Edit(kTorch, "file: resnet50.pt2", "file: a.pt2\n  cuda_graphs: true\n  warmup: []"),
       "torch.cuda_graphs: true records the torch.warmup batch sizes, and torch.warmup is empty"},
      {"torch unknown key", Edit(kTorch, "file: resnet50.pt2", "file: a.pt2\n  threads: 4"),
       "torch.threads: unknown key"},
  };
}

INSTANTIATE_TEST_SUITE_P(Cases, ModelConfigErrorTest, ::testing::ValuesIn(ErrorCases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) {
                           std::string name = info.param.label;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

constexpr char kRepeat[] = R"(
backend: builtin
builtin: {op: repeat}
decoupled: true
inputs:
  - {name: IN, datatype: INT32, dims: [-1]}
outputs:
  - {name: OUT, datatype: INT32, dims: [1], label_filename: labels.txt}
)";

TEST(ModelConfigTest, ParsesBuiltinDecoupledConfigWithLabels) {
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(kRepeat);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->backend, ModelBackend::kBuiltin);
  EXPECT_EQ(spec->builtin.op, BuiltinOp::kRepeat);
  EXPECT_TRUE(spec->decoupled);
  EXPECT_EQ(spec->output_label_files, std::vector<std::string>{"labels.txt"});
}

TEST(ModelConfigTest, BuiltinConfigErrorsNameTheKey) {
  const std::string r = kRepeat;
  const std::pair<std::string, std::string> cases[] = {
      {Edit(r, "decoupled: true\n", ""), "decoupled: builtin op repeat needs decoupled: true"},
      {Edit(r, "op: repeat", "op: add_sub"), "decoupled: only builtin op repeat is decoupled"},
      {Edit(r, "op: repeat", "op: onnx"), "builtin.op: \"onnx\" is not one of"},
      {Edit(r, "builtin: {op: repeat}\n", ""), "builtin: required with backend: builtin"},
      {Edit(r, "{name: IN, datatype: INT32, dims: [-1]}",
            "{name: IN, datatype: INT32, dims: [-1], label_filename: x}"),
       "inputs[0].label_filename: only outputs have labels"},
      {Edit(r, "decoupled: true", "decoupled: true\nmax_batch_size: 2\ndynamic_batching: {}"),
       "dynamic_batching: a decoupled model is not batched"},
  };
  for (const auto& [text, want] : cases) {
    absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(text);
    ASSERT_FALSE(spec.ok()) << want;
    EXPECT_THAT(std::string(spec.status().message()), StartsWith(want));
  }
}

TEST(ModelConfigTest, RejectsOversizedText) {
  std::string yaml(kMaxModelConfigBytes + 1, ' ');
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(yaml);
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("larger than"));
}

TEST(ModelConfigTest, ValidModelNames) {
  EXPECT_TRUE(IsValidModelName("demo_mlp"));
  EXPECT_TRUE(IsValidModelName("a.b-C_9"));
  EXPECT_FALSE(IsValidModelName(""));
  EXPECT_FALSE(IsValidModelName("."));
  EXPECT_FALSE(IsValidModelName(".."));
  EXPECT_FALSE(IsValidModelName(".hidden"));
  EXPECT_FALSE(IsValidModelName("a/b"));
  EXPECT_FALSE(IsValidModelName("a\\b"));
  EXPECT_FALSE(IsValidModelName(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidModelName(std::string(256, 'a')));
}

// Endless document streams are refused before they are loaded (fuzzer).
TEST(ModelConfigTest, DocumentStreamsAreCapped) {
  std::string many;
  for (int i = 0; i < 100000; ++i) many += "---\n";
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(many);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("config.yaml holds more than 16 YAML documents"),
            std::string::npos)
      << spec.status();
}

}  // namespace
}  // namespace inferd
