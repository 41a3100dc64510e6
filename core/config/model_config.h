// ModelConfigSpec: one model's config.yaml in a model repository, parsed
// into typed structs. The model layer (core/models/model_repository.h)
// turns a spec into a loaded Model; the scheduler reads its batching
// settings. yaml-cpp is used only in model_config.cc.
//
// A config.yaml looks like (docs/MODELS.md is the full reference):
//
//   name: demo_mlp              # optional; must equal the folder name
//   version: "1"
//   backend: mlp                # mlp | plugin | builtin | torch
//   decoupled: false            # true: 0..N responses per request (builtin repeat)
//   max_batch_size: 64
//   dynamic_batching: {preferred_batch_sizes: [8, 32], max_queue_delay_us: 500}
//   scheduling: {preemptible: true}   # default false
//   inputs:  [{name: INPUT0,  datatype: FP32, dims: [-1, 64]}]
//   outputs: [{name: OUTPUT0, datatype: FP32, dims: [-1, 16]}]
//   mlp:
//     weights: model.safetensors
//     dtype: fp32                # fp32 | fp16 | bf16
//     cuda_graphs: true          # default true
//     layers:
//       - {weight: 0.weight, bias: 0.bias, activation: relu}
//       - {weight: 2.weight, bias: 2.bias}
//
// or, for a PyTorch model (backend: torch):
//
//   torch:
//     file: model.pt2            # AOTInductor package or TorchScript archive
//     format: aoti               # aoti | torchscript; default from the file name
//     instances_per_device: 1    # executions at once per device
//     warmup: [1, 8]             # batch sizes run at load, or all
//
// Thread-safety: the functions here are pure and safe to call concurrently.
#ifndef INFERD_CORE_CONFIG_MODEL_CONFIG_H_
#define INFERD_CORE_CONFIG_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor/dtype.h"

namespace inferd {

enum class ModelBackend { kMlp, kPlugin, kBuiltin, kTorch };

// builtin.op: a computation inferd carries itself (Triton's quick-start
// models): add_sub (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1,
// numeric), string_add_sub (the same on BYTES decimal strings), identity
// (OUTPUT0 = INPUT0, any type), repeat (decoupled: one response per
// element of IN, Triton's repeat_int32).
enum class BuiltinOp { kAddSub, kStringAddSub, kIdentity, kRepeat };

// Activation after a dense layer. kGelu is the exact (erf) GELU of
// torch.nn.GELU(); kGeluTanh is nn.GELU(approximate="tanh").
enum class MlpActivation { kNone, kRelu, kGelu, kGeluTanh };

// "none" | "relu" | "gelu" | "gelu_tanh".
absl::string_view MlpActivationName(MlpActivation activation);

// inputs[i] / outputs[i]. -1 in dims is a variable dimension (the batch).
struct ModelTensorConfig {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> dims;
};

// dynamic_batching.* (used by the scheduler; present means enabled).
struct DynamicBatchingConfig {
  std::vector<int> preferred_batch_sizes;  // each in [1, max_batch_size]
  int64_t max_queue_delay_us = 0;
};

// scheduling.next_batch_lead_us unless set, and its largest value.
inline constexpr int64_t kDefaultNextBatchLeadUs = 100;
inline constexpr int64_t kMaxNextBatchLeadUs = 1000000;

// scheduling.* (used by the scheduler).
struct SchedulingConfig {
  // With enable_task_preemption, a running BACKGROUND execution of this
  // model may be cancelled and requeued to make room for a CRITICAL task
  // (its device work finishes and its result is discarded).
  bool preemptible = false;
  // How many of this model's executions may run at once on one device
  // (0: the backend's own limit — torch.instances_per_device — or none).
  // Fewer executions at a time let requests gather into larger batches.
  int max_executions_per_device = 0;
  // false: this model's executions on one device run one after another on
  // one stream instead of side by side (a model whose one execution fills
  // the GPU): the next batch is enqueued while one runs.
  bool overlap_executions = true;
  // With overlap_executions false: how long before the running execution's
  // predicted end the next batch is released (batching rule 5d).
  int64_t next_batch_lead_us = kDefaultNextBatchLeadUs;
};

// mlp.layers[i]: y = act(x W^T + b), as torch.nn.Linear stores W [out, in].
struct MlpLayerConfig {
  std::string weight;  // tensor name in the weights file
  std::string bias;    // "" = no bias (nn.Linear(bias=False))
  MlpActivation activation = MlpActivation::kNone;
};

// mlp.*
struct MlpBackendConfig {
  std::string weights;  // safetensors file, relative to the model folder
  DataType dtype = DataType::kFp32;  // kFp32 | kFp16 | kBf16
  std::vector<MlpLayerConfig> layers;
  bool cuda_graphs = true;  // replay each stream's forward as a CUDA graph on GPUs
};

// builtin.*
struct BuiltinBackendConfig {
  BuiltinOp op = BuiltinOp::kAddSub;
};

// plugin.*
struct PluginBackendConfig {
  std::string library;  // shared library, relative to the model folder
  std::vector<std::pair<std::string, std::string>> parameters;  // sorted by key
};

// torch.format: how torch.file was made.
enum class TorchFormat {
  kAoti,         // torch.export + aoti_compile_and_package (.pt2)
  kTorchScript,  // torch.jit.script / trace + torch.jit.save (.pt)
};

// "aoti" | "torchscript".
absl::string_view TorchFormatName(TorchFormat format);

// torch.*
struct TorchBackendConfig {
  std::string file;  // relative to the model folder
  TorchFormat format = TorchFormat::kTorchScript;  // from the file name unless set
  int instances_per_device = 1;
  // Batch sizes run once per instance at load (each input filled with
  // zeros), which also checks the model against inputs/outputs. Unset:
  // every size 1..max_batch_size when max_batch_size <= kMaxTorchWarmupAll,
  // else 1 and max_batch_size; `all`: every size; [] runs none.
  std::vector<int> warmup;
  bool warmup_all = false;  // `warmup: all` was written
  // On CUDA devices, record each warmup batch size's run in a CUDA graph
  // per instance and replay it for batches of that size.
  bool cuda_graphs = false;
};

struct ModelConfigSpec {
  std::string name;  // "" when the file does not set it
  std::string version = "1";
  ModelBackend backend = ModelBackend::kMlp;
  bool decoupled = false;  // 0..N responses per request (builtin repeat only)
  int max_batch_size = 0;  // 0: the model does not batch along dim 0
  bool has_dynamic_batching = false;
  DynamicBatchingConfig dynamic_batching;
  SchedulingConfig scheduling;
  std::vector<ModelTensorConfig> inputs;
  std::vector<ModelTensorConfig> outputs;
  // outputs[i].label_filename: output i's class labels, one per line,
  // relative to the model folder ("" = none); classification answers
  // "value:index:label". One entry per output.
  std::vector<std::string> output_label_files;
  MlpBackendConfig mlp;        // set when backend == kMlp
  PluginBackendConfig plugin;  // set when backend == kPlugin
  TorchBackendConfig torch;    // set when backend == kTorch
  BuiltinBackendConfig builtin;  // set when backend == kBuiltin
};

// Limits on what a config may declare.
inline constexpr int kMaxModelBatchSize = 1 << 20;
inline constexpr int kMaxModelTensors = 64;
inline constexpr int kMaxModelDims = 16;
inline constexpr int kMaxMlpLayers = 256;
inline constexpr int kMaxTorchInstances = 16;
inline constexpr int kMaxExecutionsPerDevice = 64;
inline constexpr int kMaxTorchWarmupSizes = 16;
// `torch.warmup: all` runs every batch size up to this many; it is also the
// default up to this max_batch_size ([1, max_batch_size] above it).
inline constexpr int kMaxTorchWarmupAll = 256;
inline constexpr int64_t kMaxModelConfigBytes = 1 << 20;

// Returns true for a name made of [A-Za-z0-9_.-], 1..255 characters, not
// starting with '.'. Model names and versions must pass it.
bool IsValidModelName(absl::string_view name);

// Parses and validates config.yaml text. Unknown or duplicate keys, wrong
// types, bad values and YAML syntax errors give INVALID_ARGUMENT whose
// message starts with the key path, e.g. "mlp.layers[1].activation:
// \"tanh\" is not one of none, relu, gelu, gelu_tanh" or
// "inputs[0].dims[1]: 0 is out of range; expected -1 or >= 1".
// Structural rules checked here: the backend's section present and the
// others absent; at least one input and output with unique names; mlp needs
// max_batch_size >= 1, one input and one output of the mlp dtype, each of
// rank 2 with dims [-1, features]; dynamic_batching needs
// max_batch_size >= 1; torch needs numeric datatypes torch has (no BYTES,
// UINT16/32/64) and warmup sizes in [1, max_batch_size]. Checks that need
// the weights or the model file are made by the loader.
absl::StatusOr<ModelConfigSpec> ParseModelConfig(absl::string_view yaml_text);

}  // namespace inferd

#endif  // INFERD_CORE_CONFIG_MODEL_CONFIG_H_
