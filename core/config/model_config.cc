// config.yaml of one model. yaml-cpp throws; every call into it is inside
// ParseModelConfig's try block, so no exception leaves this file.
#include "core/config/model_config.h"

#include <yaml-cpp/yaml.h>

#include "core/config/yaml_util.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <initializer_list>
#include <limits>
#include <set>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

using config_internal::Got;
using config_internal::IsPlainScalar;
using config_internal::LoadDocuments;
using config_internal::Quote;

absl::Status KeyError(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

std::string Child(absl::string_view prefix, absl::string_view key) {
  return prefix.empty() ? std::string(key) : absl::StrCat(prefix, ".", key);
}

std::string Item(absl::string_view prefix, size_t i) { return absl::StrCat(prefix, "[", i, "]"); }

// Checks that `node` is a map whose keys are distinct scalars from `allowed`.
absl::Status CheckMap(const YAML::Node& node, absl::string_view path,
                      std::initializer_list<absl::string_view> allowed) {
  const std::string where = path.empty() ? std::string("(top level)") : std::string(path);
  if (!node.IsMap()) return KeyError(where, absl::StrCat("expected a map, got ", Got(node)));
  std::set<std::string> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      return KeyError(where, absl::StrCat("expected a key, got ", Got(entry.first)));
    }
    const std::string& key = entry.first.Scalar();
    const std::string key_path = Child(path, key);
    if (!seen.insert(key).second) return KeyError(key_path, "duplicate key");
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return KeyError(key_path, "unknown key");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadString(const YAML::Node& node, absl::string_view path, std::string* out) {
  if (!node.IsScalar()) return KeyError(path, absl::StrCat("expected a string, got ", Got(node)));
  if (node.Scalar().empty()) return KeyError(path, "must not be empty");
  *out = node.Scalar();
  return absl::OkStatus();
}

absl::Status ReadInt(const YAML::Node& node, absl::string_view path, int64_t lo, int64_t hi,
                     int64_t* out) {
  const std::string expected = absl::StrCat("expected an integer, got ", Got(node));
  if (!IsPlainScalar(node)) return KeyError(path, expected);
  const std::string& text = node.Scalar();
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec == std::errc::result_out_of_range) {
    return KeyError(path, absl::StrCat(text, " is out of range [", lo, ", ", hi, "]"));
  }
  if (ec != std::errc() || ptr != end || begin == end) return KeyError(path, expected);
  if (value < lo || value > hi) {
    return KeyError(path, absl::StrCat(value, " is out of range [", lo, ", ", hi, "]"));
  }
  *out = value;
  return absl::OkStatus();
}

absl::Status ReadBool(const YAML::Node& node, absl::string_view path, bool* out) {
  if (IsPlainScalar(node) && (node.Scalar() == "true" || node.Scalar() == "false")) {
    *out = node.Scalar() == "true";
    return absl::OkStatus();
  }
  return KeyError(path, absl::StrCat("expected true or false, got ", Got(node)));
}

template <typename E>
absl::Status ReadEnum(const YAML::Node& node, absl::string_view path,
                      std::initializer_list<std::pair<absl::string_view, E>> options, E* out) {
  std::vector<absl::string_view> names;
  for (const auto& [name, value] : options) names.push_back(name);
  if (!node.IsScalar()) {
    return KeyError(path, absl::StrCat("expected one of ", absl::StrJoin(names, ", "), ", got ",
                                       Got(node)));
  }
  for (const auto& [name, value] : options) {
    if (node.Scalar() == name) {
      *out = value;
      return absl::OkStatus();
    }
  }
  return KeyError(path, absl::StrCat(Quote(node.Scalar()), " is not one of ",
                                     absl::StrJoin(names, ", ")));
}

// Reads one tensor; `labels` (outputs only; null for inputs) takes its
// label_filename.
absl::Status ReadTensor(const YAML::Node& node, const std::string& path, ModelTensorConfig* out,
                        std::string* labels) {
  RETURN_IF_ERROR(CheckMap(node, path, {"name", "datatype", "dims", "label_filename"}));
  if (const YAML::Node file = node["label_filename"]; file) {
    if (labels == nullptr) {
      return KeyError(Child(path, "label_filename"), "only outputs have labels");
    }
    RETURN_IF_ERROR(ReadString(file, Child(path, "label_filename"), labels));
  }
  for (absl::string_view required : {"name", "datatype", "dims"}) {
    if (!node[std::string(required)]) return KeyError(Child(path, required), "required");
  }
  RETURN_IF_ERROR(ReadString(node["name"], Child(path, "name"), &out->name));
  const YAML::Node datatype = node["datatype"];
  const std::string datatype_path = Child(path, "datatype");
  if (!datatype.IsScalar()) {
    return KeyError(datatype_path, absl::StrCat("expected a datatype name, got ", Got(datatype)));
  }
  std::optional<DataType> dtype = ParseDataType(datatype.Scalar());
  if (!dtype.has_value() || *dtype == DataType::kInvalid) {
    return KeyError(datatype_path, absl::StrCat(Quote(datatype.Scalar()),
                                                " is not a datatype (BOOL, UINT8..UINT64, "
                                                "INT8..INT64, FP16, BF16, FP32, FP64, BYTES)"));
  }
  out->dtype = *dtype;
  const YAML::Node dims = node["dims"];
  const std::string dims_path = Child(path, "dims");
  if (!dims.IsSequence()) return KeyError(dims_path, absl::StrCat("expected a list, got ", Got(dims)));
  if (dims.size() == 0 || dims.size() > static_cast<size_t>(kMaxModelDims)) {
    return KeyError(dims_path, absl::StrCat("has ", dims.size(), " dims; expected 1 to ",
                                            kMaxModelDims));
  }
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = 0;
    RETURN_IF_ERROR(ReadInt(dims[i], Item(dims_path, i), -1, std::numeric_limits<int32_t>::max(),
                            &d));
    if (d == 0) return KeyError(Item(dims_path, i), "0 is out of range; expected -1 or >= 1");
    out->dims.push_back(d);
  }
  return absl::OkStatus();
}

// Reads inputs or outputs; `labels` (outputs only) gets one label file per
// tensor.
absl::Status ReadTensors(const YAML::Node& node, const std::string& path,
                         std::vector<ModelTensorConfig>* out,
                         std::vector<std::string>* labels = nullptr) {
  if (!node) return KeyError(path, "required");
  if (!node.IsSequence()) return KeyError(path, absl::StrCat("expected a list, got ", Got(node)));
  if (node.size() == 0 || node.size() > static_cast<size_t>(kMaxModelTensors)) {
    return KeyError(path, absl::StrCat("has ", node.size(), " tensors; expected 1 to ",
                                       kMaxModelTensors));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    ModelTensorConfig tensor;
    std::string label_file;
    RETURN_IF_ERROR(
        ReadTensor(node[i], Item(path, i), &tensor, labels != nullptr ? &label_file : nullptr));
    if (labels != nullptr) labels->push_back(std::move(label_file));
    if (!names.insert(tensor.name).second) {
      return KeyError(Child(Item(path, i), "name"),
                      absl::StrCat(Quote(tensor.name), " is used twice"));
    }
    out->push_back(std::move(tensor));
  }
  return absl::OkStatus();
}

absl::Status ReadDynamicBatching(const YAML::Node& node, DynamicBatchingConfig* out) {
  const std::string path = "dynamic_batching";
  if (node.IsNull()) return absl::OkStatus();  // "dynamic_batching:" enables the defaults
  RETURN_IF_ERROR(CheckMap(node, path, {"preferred_batch_sizes", "max_queue_delay_us"}));
  if (const YAML::Node sizes = node["preferred_batch_sizes"]; sizes) {
    const std::string sizes_path = Child(path, "preferred_batch_sizes");
    if (!sizes.IsSequence()) {
      return KeyError(sizes_path, absl::StrCat("expected a list, got ", Got(sizes)));
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      int64_t v = 0;
      RETURN_IF_ERROR(ReadInt(sizes[i], Item(sizes_path, i), 1, kMaxModelBatchSize, &v));
      out->preferred_batch_sizes.push_back(static_cast<int>(v));
    }
  }
  if (const YAML::Node delay = node["max_queue_delay_us"]; delay) {
    RETURN_IF_ERROR(ReadInt(delay, Child(path, "max_queue_delay_us"), 0, 60'000'000,
                            &out->max_queue_delay_us));
  }
  return absl::OkStatus();
}

absl::Status ReadScheduling(const YAML::Node& node, SchedulingConfig* out) {
  const std::string path = "scheduling";
  if (node.IsNull()) return absl::OkStatus();  // "scheduling:" keeps the defaults
  RETURN_IF_ERROR(CheckMap(node, path,
                           {"preemptible", "max_executions_per_device", "overlap_executions",
                            "next_batch_lead_us"}));
  if (const YAML::Node overlap = node["overlap_executions"]; overlap) {
    RETURN_IF_ERROR(
        ReadBool(overlap, Child(path, "overlap_executions"), &out->overlap_executions));
  }
  if (const YAML::Node preemptible = node["preemptible"]; preemptible) {
    RETURN_IF_ERROR(ReadBool(preemptible, Child(path, "preemptible"), &out->preemptible));
  }
  if (const YAML::Node n = node["max_executions_per_device"]; n) {
    int64_t v = 0;
    RETURN_IF_ERROR(ReadInt(n, Child(path, "max_executions_per_device"), 0,
                            kMaxExecutionsPerDevice, &v));
    out->max_executions_per_device = static_cast<int>(v);
  }
  if (const YAML::Node n = node["next_batch_lead_us"]; n) {
    RETURN_IF_ERROR(ReadInt(n, Child(path, "next_batch_lead_us"), 0, kMaxNextBatchLeadUs,
                            &out->next_batch_lead_us));
    if (out->overlap_executions) {
      return KeyError(Child(path, "next_batch_lead_us"),
                      "applies only with scheduling.overlap_executions: false");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadMlp(const YAML::Node& node, MlpBackendConfig* out) {
  const std::string path = "mlp";
  RETURN_IF_ERROR(CheckMap(node, path, {"weights", "dtype", "layers", "cuda_graphs"}));
  if (!node["weights"]) return KeyError("mlp.weights", "required");
  RETURN_IF_ERROR(ReadString(node["weights"], "mlp.weights", &out->weights));
  if (const YAML::Node dtype = node["dtype"]; dtype) {
    RETURN_IF_ERROR(ReadEnum<DataType>(
        dtype, "mlp.dtype",
        {{"fp32", DataType::kFp32}, {"fp16", DataType::kFp16}, {"bf16", DataType::kBf16}},
        &out->dtype));
  }
  if (const YAML::Node graphs = node["cuda_graphs"]; graphs) {
    RETURN_IF_ERROR(ReadBool(graphs, "mlp.cuda_graphs", &out->cuda_graphs));
  }
  const YAML::Node layers = node["layers"];
  if (!layers) return KeyError("mlp.layers", "required");
  if (!layers.IsSequence()) {
    return KeyError("mlp.layers", absl::StrCat("expected a list, got ", Got(layers)));
  }
  if (layers.size() == 0 || layers.size() > static_cast<size_t>(kMaxMlpLayers)) {
    return KeyError("mlp.layers", absl::StrCat("has ", layers.size(), " layers; expected 1 to ",
                                               kMaxMlpLayers));
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string layer_path = Item("mlp.layers", i);
    const YAML::Node layer = layers[i];
    RETURN_IF_ERROR(CheckMap(layer, layer_path, {"weight", "bias", "activation"}));
    MlpLayerConfig config;
    if (!layer["weight"]) return KeyError(Child(layer_path, "weight"), "required");
    RETURN_IF_ERROR(ReadString(layer["weight"], Child(layer_path, "weight"), &config.weight));
    if (const YAML::Node bias = layer["bias"]; bias) {
      RETURN_IF_ERROR(ReadString(bias, Child(layer_path, "bias"), &config.bias));
    }
    if (const YAML::Node act = layer["activation"]; act) {
      RETURN_IF_ERROR(ReadEnum<MlpActivation>(act, Child(layer_path, "activation"),
                                              {{"none", MlpActivation::kNone},
                                               {"relu", MlpActivation::kRelu},
                                               {"gelu", MlpActivation::kGelu},
                                               {"gelu_tanh", MlpActivation::kGeluTanh}},
                                              &config.activation));
    }
    out->layers.push_back(std::move(config));
  }
  return absl::OkStatus();
}

absl::Status ReadBuiltin(const YAML::Node& node, BuiltinBackendConfig* out) {
  RETURN_IF_ERROR(CheckMap(node, "builtin", {"op"}));
  if (!node["op"]) return KeyError("builtin.op", "required");
  return ReadEnum<BuiltinOp>(node["op"], "builtin.op",
                             {{"add_sub", BuiltinOp::kAddSub},
                              {"string_add_sub", BuiltinOp::kStringAddSub},
                              {"identity", BuiltinOp::kIdentity},
                              {"repeat", BuiltinOp::kRepeat}},
                             &out->op);
}

absl::Status ReadPlugin(const YAML::Node& node, PluginBackendConfig* out) {
  RETURN_IF_ERROR(CheckMap(node, "plugin", {"library", "parameters"}));
  if (!node["library"]) return KeyError("plugin.library", "required");
  RETURN_IF_ERROR(ReadString(node["library"], "plugin.library", &out->library));
  if (const YAML::Node params = node["parameters"]; params && !params.IsNull()) {
    if (!params.IsMap()) {
      return KeyError("plugin.parameters", absl::StrCat("expected a map, got ", Got(params)));
    }
    std::set<std::string> seen;
    for (const auto& entry : params) {
      if (!entry.first.IsScalar() || entry.first.Scalar().empty()) {
        return KeyError("plugin.parameters", absl::StrCat("expected a key, got ", Got(entry.first)));
      }
      const std::string key_path = Child("plugin.parameters", entry.first.Scalar());
      if (!seen.insert(entry.first.Scalar()).second) return KeyError(key_path, "duplicate key");
      if (!entry.second.IsScalar()) {
        return KeyError(key_path, absl::StrCat("expected a string, got ", Got(entry.second)));
      }
      out->parameters.emplace_back(entry.first.Scalar(), entry.second.Scalar());
    }
    std::sort(out->parameters.begin(), out->parameters.end());
  }
  return absl::OkStatus();
}

absl::Status ReadTorch(const YAML::Node& node, TorchBackendConfig* out, bool* has_warmup) {
  RETURN_IF_ERROR(CheckMap(node, "torch",
                           {"file", "format", "instances_per_device", "warmup", "cuda_graphs"}));
  if (!node["file"]) return KeyError("torch.file", "required");
  RETURN_IF_ERROR(ReadString(node["file"], "torch.file", &out->file));
  if (const YAML::Node format = node["format"]; format) {
    RETURN_IF_ERROR(ReadEnum<TorchFormat>(
        format, "torch.format",
        {{"aoti", TorchFormat::kAoti}, {"torchscript", TorchFormat::kTorchScript}}, &out->format));
  } else {
    const absl::string_view file = out->file;
    if (absl::EndsWith(file, ".pt2")) {
      out->format = TorchFormat::kAoti;
    } else if (absl::EndsWith(file, ".pt") || absl::EndsWith(file, ".pth") ||
               absl::EndsWith(file, ".ts") || absl::EndsWith(file, ".torchscript")) {
      out->format = TorchFormat::kTorchScript;
    } else {
      return KeyError("torch.format",
                      absl::StrCat("required: ", Quote(out->file),
                                   " ends in neither .pt2 (aoti) nor .pt, .pth, .ts (torchscript)"));
    }
  }
  if (const YAML::Node n = node["instances_per_device"]; n) {
    int64_t v = 0;
    RETURN_IF_ERROR(ReadInt(n, "torch.instances_per_device", 1, kMaxTorchInstances, &v));
    out->instances_per_device = static_cast<int>(v);
  }
  if (const YAML::Node graphs = node["cuda_graphs"]; graphs) {
    RETURN_IF_ERROR(ReadBool(graphs, "torch.cuda_graphs", &out->cuda_graphs));
  }
  if (const YAML::Node warmup = node["warmup"]; warmup) {
    *has_warmup = true;
    if (warmup.IsScalar() && warmup.Scalar() == "all") {
      out->warmup_all = true;
      return absl::OkStatus();
    }
    if (!warmup.IsSequence()) {
      return KeyError("torch.warmup",
                      absl::StrCat("expected a list of batch sizes or all, got ", Got(warmup)));
    }
    if (warmup.size() > static_cast<size_t>(kMaxTorchWarmupSizes)) {
      return KeyError("torch.warmup", absl::StrCat("has ", warmup.size(),
                                                   " sizes; expected at most ",
                                                   kMaxTorchWarmupSizes));
    }
    for (size_t i = 0; i < warmup.size(); ++i) {
      int64_t v = 0;
      RETURN_IF_ERROR(ReadInt(warmup[i], Item("torch.warmup", i), 1, kMaxModelBatchSize, &v));
      out->warmup.push_back(static_cast<int>(v));
    }
  }
  return absl::OkStatus();
}

// Cross-field rules for the torch backend.
absl::Status CheckTorchSignature(ModelConfigSpec& spec, bool has_warmup) {
  for (const auto* list : {&spec.inputs, &spec.outputs}) {
    const char* name = list == &spec.inputs ? "inputs" : "outputs";
    for (size_t i = 0; i < list->size(); ++i) {
      const DataType dtype = (*list)[i].dtype;
      if (dtype == DataType::kBytes || dtype == DataType::kUint16 ||
          dtype == DataType::kUint32 || dtype == DataType::kUint64) {
        return KeyError(Child(Item(name, i), "datatype"),
                        absl::StrCat(DataTypeName(dtype),
                                     " has no torch tensor type; backend torch takes BOOL, UINT8, "
                                     "INT8..INT64, FP16, BF16, FP32, FP64"));
      }
    }
  }
  const int batch_cap = spec.max_batch_size > 0 ? spec.max_batch_size : 1;
  // Every batch size the batcher may form, where there are not too many:
  // the first execution at a new size pays for plan selection (cuDNN
  // plans, allocator growth), tens of milliseconds for a ResNet-50.
  if (spec.torch.warmup_all && batch_cap > kMaxTorchWarmupAll) {
    return KeyError("torch.warmup",
                    absl::StrCat("all would run ", batch_cap, " batch sizes; at most ",
                                 kMaxTorchWarmupAll, " (list the sizes instead)"));
  }
  if (spec.torch.warmup_all || (!has_warmup && batch_cap <= kMaxTorchWarmupAll)) {
    spec.torch.warmup.clear();
    for (int b = 1; b <= batch_cap; ++b) spec.torch.warmup.push_back(b);
  } else if (!has_warmup) {
    spec.torch.warmup = {1};
    if (batch_cap > 1) spec.torch.warmup.push_back(batch_cap);
  }
  if (spec.torch.cuda_graphs && spec.torch.warmup.empty()) {
    return KeyError("torch.cuda_graphs",
                    "true records the torch.warmup batch sizes, and torch.warmup is empty");
  }
  for (size_t i = 0; i < spec.torch.warmup.size(); ++i) {
    if (spec.torch.warmup[i] > batch_cap) {
      return KeyError(Item("torch.warmup", i),
                      absl::StrCat(spec.torch.warmup[i], " is larger than ",
                                   spec.max_batch_size > 0
                                       ? absl::StrCat("max_batch_size (", spec.max_batch_size, ")")
                                       : std::string("1 (the model does not batch)")));
    }
  }
  return absl::OkStatus();
}

// Cross-field rules for the mlp backend that need no weights.
absl::Status CheckMlpSignature(const ModelConfigSpec& spec) {
  if (spec.max_batch_size < 1) {
    return KeyError("max_batch_size", absl::StrCat(spec.max_batch_size,
                                                   " is out of range; backend mlp needs >= 1"));
  }
  if (spec.inputs.size() != 1) {
    return KeyError("inputs", absl::StrCat("has ", spec.inputs.size(),
                                           " tensors; backend mlp takes exactly 1"));
  }
  if (spec.outputs.size() != 1) {
    return KeyError("outputs", absl::StrCat("has ", spec.outputs.size(),
                                            " tensors; backend mlp gives exactly 1"));
  }
  for (const auto& [list, tensor] :
       {std::pair<const char*, const ModelTensorConfig*>{"inputs[0]", &spec.inputs[0]},
        {"outputs[0]", &spec.outputs[0]}}) {
    if (tensor->dtype != spec.mlp.dtype) {
      return KeyError(Child(list, "datatype"),
                      absl::StrCat(DataTypeName(tensor->dtype), " differs from mlp.dtype (",
                                   DataTypeName(spec.mlp.dtype), ")"));
    }
    if (tensor->dims.size() != 2 || tensor->dims[0] != -1 || tensor->dims[1] < 1) {
      return KeyError(Child(list, "dims"),
                      "backend mlp expects [-1, features] (batch, then a fixed feature count)");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfigSpec> ParseYaml(absl::string_view yaml_text) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> documents,
                   LoadDocuments(yaml_text, "config.yaml"));
  if (documents.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.yaml holds ", documents.size(), " YAML documents; expected one"));
  }
  const YAML::Node root = documents[0];
  RETURN_IF_ERROR(CheckMap(root, "",
                           {"name", "version", "backend", "decoupled", "max_batch_size",
                            "dynamic_batching", "scheduling", "inputs", "outputs", "mlp",
                            "plugin", "builtin", "torch"}));
  ModelConfigSpec spec;
  if (const YAML::Node name = root["name"]; name) {
    RETURN_IF_ERROR(ReadString(name, "name", &spec.name));
    if (!IsValidModelName(spec.name)) {
      return KeyError("name", absl::StrCat(Quote(spec.name),
                                           " is not a valid name ([A-Za-z0-9_.-], not "
                                           "starting with '.', at most 255 characters)"));
    }
  }
  if (const YAML::Node version = root["version"]; version) {
    RETURN_IF_ERROR(ReadString(version, "version", &spec.version));
    if (!IsValidModelName(spec.version)) {
      return KeyError("version", absl::StrCat(Quote(spec.version),
                                              " is not a valid version ([A-Za-z0-9_.-])"));
    }
  }
  if (!root["backend"]) return KeyError("backend", "required (mlp | plugin | builtin | torch)");
  RETURN_IF_ERROR(ReadEnum<ModelBackend>(root["backend"], "backend",
                                         {{"mlp", ModelBackend::kMlp},
                                          {"plugin", ModelBackend::kPlugin},
                                          {"builtin", ModelBackend::kBuiltin},
                                          {"torch", ModelBackend::kTorch}},
                                         &spec.backend));
  if (const YAML::Node decoupled = root["decoupled"]; decoupled) {
    RETURN_IF_ERROR(ReadBool(decoupled, "decoupled", &spec.decoupled));
  }
  if (const YAML::Node mbs = root["max_batch_size"]; mbs) {
    int64_t v = 0;
    RETURN_IF_ERROR(ReadInt(mbs, "max_batch_size", 0, kMaxModelBatchSize, &v));
    spec.max_batch_size = static_cast<int>(v);
  }
  if (const YAML::Node db = root["dynamic_batching"]; db) {
    spec.has_dynamic_batching = true;
    RETURN_IF_ERROR(ReadDynamicBatching(db, &spec.dynamic_batching));
    if (spec.max_batch_size < 1) {
      return KeyError("dynamic_batching", "needs max_batch_size >= 1");
    }
    const auto& sizes = spec.dynamic_batching.preferred_batch_sizes;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] > spec.max_batch_size) {
        return KeyError(Item("dynamic_batching.preferred_batch_sizes", i),
                        absl::StrCat(sizes[i], " is larger than max_batch_size (",
                                     spec.max_batch_size, ")"));
      }
      if (i > 0 && sizes[i] <= sizes[i - 1]) {
        return KeyError(Item("dynamic_batching.preferred_batch_sizes", i),
                        "sizes must be strictly increasing");
      }
    }
  }
  if (const YAML::Node scheduling = root["scheduling"]; scheduling) {
    RETURN_IF_ERROR(ReadScheduling(scheduling, &spec.scheduling));
  }
  RETURN_IF_ERROR(ReadTensors(root["inputs"], "inputs", &spec.inputs));
  RETURN_IF_ERROR(
      ReadTensors(root["outputs"], "outputs", &spec.outputs, &spec.output_label_files));

  // Exactly the backend's own section.
  static constexpr std::pair<ModelBackend, const char*> kSections[] = {
      {ModelBackend::kMlp, "mlp"}, {ModelBackend::kPlugin, "plugin"},
      {ModelBackend::kBuiltin, "builtin"}, {ModelBackend::kTorch, "torch"}};
  for (const auto& [backend, section] : kSections) {
    const bool present = static_cast<bool>(root[section]);
    if (backend == spec.backend && !present) {
      return KeyError(section, absl::StrCat("required with backend: ", section));
    }
    if (backend != spec.backend && present) {
      return KeyError(section, absl::StrCat("only allowed with backend: ", section));
    }
  }
  switch (spec.backend) {
    case ModelBackend::kMlp:
      RETURN_IF_ERROR(ReadMlp(root["mlp"], &spec.mlp));
      RETURN_IF_ERROR(CheckMlpSignature(spec));
      break;
    case ModelBackend::kPlugin:
      RETURN_IF_ERROR(ReadPlugin(root["plugin"], &spec.plugin));
      break;
    case ModelBackend::kBuiltin:
      RETURN_IF_ERROR(ReadBuiltin(root["builtin"], &spec.builtin));
      break;
    case ModelBackend::kTorch: {
      bool has_warmup = false;
      RETURN_IF_ERROR(ReadTorch(root["torch"], &spec.torch, &has_warmup));
      RETURN_IF_ERROR(CheckTorchSignature(spec, has_warmup));
      break;
    }
  }
  if (spec.decoupled != (spec.backend == ModelBackend::kBuiltin &&
                         spec.builtin.op == BuiltinOp::kRepeat)) {
    return KeyError("decoupled", spec.decoupled ? "only builtin op repeat is decoupled"
                                                : "builtin op repeat needs decoupled: true");
  }
  if (spec.decoupled && spec.has_dynamic_batching) {
    return KeyError("dynamic_batching", "a decoupled model is not batched");
  }
  return spec;
}

}  // namespace

absl::string_view MlpActivationName(MlpActivation activation) {
  switch (activation) {
    case MlpActivation::kNone:
      return "none";
    case MlpActivation::kRelu:
      return "relu";
    case MlpActivation::kGelu:
      return "gelu";
    case MlpActivation::kGeluTanh:
      return "gelu_tanh";
  }
  return "none";
}

absl::string_view TorchFormatName(TorchFormat format) {
  return format == TorchFormat::kAoti ? "aoti" : "torchscript";
}

bool IsValidModelName(absl::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '.') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<ModelConfigSpec> ParseModelConfig(absl::string_view yaml_text) {
  if (static_cast<int64_t>(yaml_text.size()) > kMaxModelConfigBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.yaml is larger than ", kMaxModelConfigBytes, " bytes"));
  }
  try {
    return ParseYaml(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("YAML syntax error at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config.yaml could not be parsed: ", e.what()));
  }
}

}  // namespace inferd
