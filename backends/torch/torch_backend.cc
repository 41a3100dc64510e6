// libinferd_torch.so: runs PyTorch models (TorchScript archives and
// AOTInductor packages) for inferd through the C ABI of
// torch_backend_api.h. Everything libtorch throws is caught here and
// returned as a status code with a message; nothing escapes the C ABI.
//
// Zero copy: inputs are the daemon's device buffers wrapped with
// torch::from_blob; the model runs on the daemon's stream (an external
// stream made current with a guard); its outputs are copied into the
// daemon's output buffers on that same stream, and torch's own result
// tensors go back to its caching allocator in stream order.
//
// CUDA graphs (models loaded with cuda_graphs): inferd_torch_capture
// records one run of an instance per set of input shapes; a later call
// with those shapes copies its inputs into the graph's buffers, replays
// the recorded kernels with one launch and copies the results out.
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/torch/torch_backend_api.h"

#ifdef INFERD_TORCH_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

// AOTInductor's package loader with the (path, name, single_threaded,
// num_runners, device_index) constructor and run(inputs, stream).
#if (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 8)) && \
    __has_include(<torch/csrc/inductor/aoti_package/model_package_loader.h>)
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#define INFERD_TORCH_HAS_AOTI 1
#else
#define INFERD_TORCH_HAS_AOTI 0
#endif

namespace {

#define INFERD_STR2(x) #x
#define INFERD_STR(x) INFERD_STR2(x)
constexpr char kLibtorchVersion[] = INFERD_STR(TORCH_VERSION_MAJOR) "." INFERD_STR(
    TORCH_VERSION_MINOR) "." INFERD_STR(TORCH_VERSION_PATCH);

// Load errors start with the config key of the model file.
constexpr char kFileKey[] = "torch.file: ";

// Longest message handed back (the model's own messages can be long).
constexpr size_t kMaxMessage = 600;

// A failure on its way to the C ABI.
struct Failure {
  int32_t code;
  std::string message;
};

// inferd_dtype numbers (include/inferd/plugin_api.h).
std::optional<c10::ScalarType> ScalarTypeOf(int32_t dtype) {
  switch (dtype) {
    case 1:
      return c10::kBool;
    case 2:
      return c10::kByte;
    case 6:
      return c10::kChar;
    case 7:
      return c10::kShort;
    case 8:
      return c10::kInt;
    case 9:
      return c10::kLong;
    case 10:
      return c10::kHalf;
    case 11:
      return c10::kBFloat16;
    case 12:
      return c10::kFloat;
    case 13:
      return c10::kDouble;
    default:
      return std::nullopt;
  }
}

const char* DtypeName(int32_t dtype) {
  static const char* const kNames[] = {"INVALID", "BOOL",  "UINT8", "UINT16", "UINT32",
                                       "UINT64",  "INT8",  "INT16", "INT32",  "INT64",
                                       "FP16",    "BF16",  "FP32",  "FP64",   "BYTES"};
  return dtype >= 0 && dtype <= 14 ? kNames[dtype] : "INVALID";
}

const char* ScalarName(c10::ScalarType t) {
  for (int32_t d = 1; d <= 13; ++d) {
    if (ScalarTypeOf(d) == t) return DtypeName(d);
  }
  return c10::toString(t);
}

std::string ShapeText(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Removes every occurrence of `path` (and of its folder) from `text`, keeps
// the first lines, and bounds the length: messages reach clients.
std::string Scrub(std::string text, const std::string& path) {
  auto erase_all = [&text](const std::string& needle, const std::string& with) {
    if (needle.empty()) return;
    for (size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + with.size())) {
      text.replace(at, needle.size(), with);
    }
  };
  const size_t slash = path.rfind('/');
  erase_all(path, slash == std::string::npos ? path : path.substr(slash + 1));
  if (slash != std::string::npos && slash > 0) erase_all(path.substr(0, slash + 1), "");
  // libtorch appends C++ frames and "Exception raised from ..." lines.
  for (const char* cut : {"\nException raised from", "\nframe #0", "\n(no backtrace available)"}) {
    const size_t at = text.find(cut);
    if (at != std::string::npos) text.resize(at);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > kMaxMessage) text = text.substr(0, kMaxMessage) + "...";
  return text;
}

int32_t Report(const Failure& f, char* error, size_t error_size) {
  if (error != nullptr && error_size > 0) {
    const size_t n = std::min(f.message.size(), error_size - 1);
    std::memcpy(error, f.message.data(), n);
    error[n] = '\0';
  }
  return f.code;
}

// Runs `fn`, turning what libtorch throws into a Failure. `context` starts
// the message; `path` is scrubbed from it.
// What libtorch threw, as a Failure with `code` — unless the message shows a
// fault of the device itself (the CUDA runtime or a CUDA library failed),
// which is INTERNAL whatever the caller expected.
Failure Thrown(int32_t code, const std::string& context, std::string message) {
  for (const char* device_fault : {"CUDA error", "CUDA driver error", "CUBLAS_STATUS_",
                                   "CUDNN_STATUS_", "cuDNN error"}) {
    if (message.find(device_fault) != std::string::npos) code = INFERD_TORCH_INTERNAL;
  }
  return Failure{code, context + std::move(message)};
}

template <typename Fn>
std::optional<Failure> Guarded(const std::string& path, const std::string& context,
                               int32_t code, Fn&& fn) {
  try {
    return fn();
  } catch (const c10::OutOfMemoryError& e) {
    return Failure{INFERD_TORCH_RESOURCE_EXHAUSTED,
                   context + "out of memory: " + Scrub(e.what_without_backtrace(), path)};
  } catch (const c10::Error& e) {
    return Thrown(code, context, Scrub(e.what_without_backtrace(), path));
  } catch (const std::bad_alloc&) {
    return Failure{INFERD_TORCH_RESOURCE_EXHAUSTED, context + "out of host memory"};
  } catch (const std::exception& e) {
    return Thrown(code, context, Scrub(e.what(), path));
  } catch (...) {
    return Failure{code, context + "unknown exception"};
  }
}

c10::Device DeviceOf(const inferd_torch_load_options& o) {
  if (o.device_kind == INFERD_TORCH_DEVICE_CUDA) {
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(o.device_ordinal));
  }
  return c10::Device(c10::kCPU);
}

// Flattens a TorchScript result (a tensor, nested tuples or lists of
// tensors) into `out`; false for anything else.
bool Flatten(const c10::IValue& v, std::vector<at::Tensor>* out) {
  if (v.isTensor()) {
    out->push_back(v.toTensor());
    return true;
  }
  if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) {
      if (!Flatten(e, out)) return false;
    }
    return true;
  }
  if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) {
      if (!Flatten(e, out)) return false;
    }
    return true;
  }
  return false;
}

class TorchModel {
 public:
  static std::optional<Failure> Load(const inferd_torch_load_options& o,
                                     std::unique_ptr<TorchModel>* out) {
    auto model = std::unique_ptr<TorchModel>(new TorchModel(o));
    if (o.format == INFERD_TORCH_FORMAT_AOTI) {
      if (std::optional<Failure> f = model->LoadAoti(o)) return f;
    } else {
      if (std::optional<Failure> f = model->LoadTorchScript(o)) return f;
    }
    *out = std::move(model);
    return std::nullopt;
  }

  std::optional<Failure> Execute(int32_t instance, void* stream, const inferd_torch_tensor* inputs,
                                 int32_t num_inputs, const inferd_torch_tensor* outputs,
                                 int32_t num_outputs) {
    if (std::optional<Failure> f = CheckCounts(num_inputs, num_outputs)) return f;
    const size_t n = InstanceIndex(instance);
    std::unique_lock<std::mutex> lock;
    if (!graphs_.empty()) lock = std::unique_lock<std::mutex>(graphs_[n]->mu);
    return Guarded(path_, "", INFERD_TORCH_MODEL_ERROR, [&]() -> std::optional<Failure> {
      c10::InferenceMode inference;
      StreamScope scope(device_, stream);
      std::vector<at::Tensor> args;
      if (std::optional<Failure> f = WrapAll(inputs, num_inputs, "inputs", &args)) return f;
#ifdef INFERD_TORCH_WITH_CUDA
      if (!graphs_.empty()) {
        GraphSet& set = *graphs_[n];
        if (Graph* g = set.Find(args)) return Replay(set, *g, args, outputs, num_outputs);
      }
#endif
      std::vector<at::Tensor> results;
      if (std::optional<Failure> f = Run(n, stream, args, &results)) return f;
      return CopyResults(results, outputs, num_outputs);
    });
  }

  // inferd_torch_capture.
  std::optional<Failure> Capture(int32_t instance, void* stream, const inferd_torch_tensor* inputs,
                                 int32_t num_inputs, const inferd_torch_tensor* outputs,
                                 int32_t num_outputs) {
    if (graphs_.empty()) {
      return Failure{INFERD_TORCH_FAILED_PRECONDITION,
                     "torch.cuda_graphs: the model was not loaded for CUDA graphs on a CUDA "
                     "device"};
    }
    if (std::optional<Failure> f = CheckCounts(num_inputs, num_outputs)) return f;
    const size_t n = InstanceIndex(instance);
    std::lock_guard<std::mutex> lock(graphs_[n]->mu);
#ifdef INFERD_TORCH_WITH_CUDA
    std::optional<Failure> f =
        Guarded(path_, "", INFERD_TORCH_MODEL_ERROR, [&]() -> std::optional<Failure> {
          c10::InferenceMode inference;
          StreamScope scope(device_, stream);
          return Record(n, stream, inputs, num_inputs, outputs, num_outputs);
        });
    // Whatever stopped the recording (the model waited for the device, or
    // allocated or launched in a way a graph cannot hold), it is the
    // model's config that asks for it; out of memory stays what it is.
    if (f.has_value() && f->code != INFERD_TORCH_RESOURCE_EXHAUSTED) {
      f->code = INFERD_TORCH_INVALID_ARGUMENT;
      f->message = "the model's run cannot be recorded in a CUDA graph (" + f->message +
                   "); serve it with cuda_graphs: false";
    }
    return f;
#else
    (void)stream, (void)inputs, (void)outputs;
    return Failure{INFERD_TORCH_FAILED_PRECONDITION, "torch.cuda_graphs: no CUDA in this build"};
#endif
  }

 private:
  // A tensor over a daemon buffer, or why it could not be made.
  struct Wrapped {
    at::Tensor tensor;
    std::optional<Failure> failure;
  };

  // On a CUDA device, makes the device and the caller's stream current
  // (so that every kernel and the caching allocator use that stream).
  class StreamScope {
   public:
    StreamScope(const c10::Device& device, void* stream) {
#ifdef INFERD_TORCH_WITH_CUDA
      if (device.is_cuda()) {
        device_guard_.emplace(device.index());
        stream_guard_.emplace(c10::cuda::getStreamFromExternal(static_cast<cudaStream_t>(stream),
                                                               device.index()));
      }
#else
      (void)device, (void)stream;
#endif
    }

   private:
#ifdef INFERD_TORCH_WITH_CUDA
    std::optional<c10::cuda::CUDAGuard> device_guard_;
    std::optional<c10::cuda::CUDAStreamGuard> stream_guard_;
#endif
  };

#ifdef INFERD_TORCH_WITH_CUDA
  // One recorded run: its inputs (views of the instance's input buffers,
  // whose shapes are the graph's key), its results and the graph.
  struct Graph {
    std::vector<at::Tensor> inputs;
    std::vector<at::Tensor> results;
    std::unique_ptr<at::cuda::CUDAGraph> graph;
  };
#endif

  // One instance's CUDA graphs. All of them read the instance's input
  // buffers (one per input, as large as the largest recorded shape; record
  // the largest batch first) and allocate from one private memory pool,
  // so no two may run at once: each replay waits for the instance's
  // previous one (`done`), whichever stream ran it, and `mu` serializes
  // the calls of the instance.
  struct GraphSet {
    std::mutex mu;
#ifdef INFERD_TORCH_WITH_CUDA
    std::vector<at::Tensor> buffers;  // per input, raw bytes
    std::vector<Graph> graphs;
    // Only a counter is taken here; the pool exists once a graph uses it.
    decltype(at::cuda::graph_pool_handle()) pool = at::cuda::graph_pool_handle();
    at::cuda::CUDAEvent done;  // waiting on it before its first record waits for nothing

    // The graph recorded for exactly these input shapes, or nullptr.
    Graph* Find(const std::vector<at::Tensor>& args) {
      for (Graph& g : graphs) {
        bool same = true;
        for (size_t i = 0; i < args.size() && same; ++i) {
          same = g.inputs[i].sizes().equals(args[i].sizes());
        }
        if (same) return &g;
      }
      return nullptr;
    }
#endif
  };

  // The instance a caller's `instance` number selects.
  size_t InstanceIndex(int32_t instance) const {
    return static_cast<size_t>(std::max(instance, 0)) % num_instances_;
  }

  std::optional<Failure> CheckCounts(int32_t num_inputs, int32_t num_outputs) const {
    if (num_inputs != static_cast<int32_t>(input_names_.size()) ||
        num_outputs != static_cast<int32_t>(output_names_.size())) {
      return Failure{INFERD_TORCH_INVALID_ARGUMENT, "inputs: wrong tensor count"};
    }
    return std::nullopt;
  }

  std::optional<Failure> WrapAll(const inferd_torch_tensor* tensors, int32_t count,
                                 const char* list, std::vector<at::Tensor>* out) const {
    out->reserve(count);
    for (int32_t i = 0; i < count; ++i) {
      Wrapped wrapped = Wrap(tensors[i], list, i);
      if (wrapped.failure) return wrapped.failure;
      out->push_back(std::move(wrapped.tensor));
    }
    return std::nullopt;
  }

  // Checks the model's results against the outputs the caller computed
  // from the config and enqueues their copies into the output buffers.
  std::optional<Failure> CopyResults(const std::vector<at::Tensor>& results,
                                     const inferd_torch_tensor* outputs,
                                     int32_t num_outputs) const {
    if (results.size() != static_cast<size_t>(num_outputs)) {
      return Failure{INFERD_TORCH_MODEL_ERROR,
                     "outputs: the model returned " + std::to_string(results.size()) +
                         " tensor(s); config.yaml declares " + std::to_string(num_outputs)};
    }
    for (int32_t i = 0; i < num_outputs; ++i) {
      Wrapped dst = Wrap(outputs[i], "outputs", i);
      if (dst.failure) return dst.failure;
      const at::Tensor& r = results[i];
      if (r.scalar_type() != dst.tensor.scalar_type() || !r.sizes().equals(dst.tensor.sizes())) {
        return Failure{INFERD_TORCH_MODEL_ERROR,
                       "outputs[" + std::to_string(i) + "] (" + output_names_[i] +
                           "): the model returned " + ScalarName(r.scalar_type()) + " " +
                           ShapeText(r.sizes()) + "; config.yaml gives " +
                           DtypeName(outputs[i].dtype) + " " + ShapeText(dst.tensor.sizes())};
      }
      if (r.device() != device_) {
        return Failure{INFERD_TORCH_MODEL_ERROR, "outputs[" + std::to_string(i) + "] (" +
                                                  output_names_[i] + "): the model returned it on " +
                                                  r.device().str() + ", not on " + device_.str()};
      }
      dst.tensor.copy_(r, /*non_blocking=*/true);
    }
    return std::nullopt;
  }

#ifdef INFERD_TORCH_WITH_CUDA
  // Inputs into the graph's buffers, one launch, results out; after the
  // instance's previous replay.
  std::optional<Failure> Replay(GraphSet& set, Graph& g, const std::vector<at::Tensor>& args,
                                const inferd_torch_tensor* outputs, int32_t num_outputs) {
    const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_.index());
    set.done.block(current);
    for (size_t i = 0; i < args.size(); ++i) g.inputs[i].copy_(args[i], /*non_blocking=*/true);
    g.graph->replay();
    std::optional<Failure> f = CopyResults(g.results, outputs, num_outputs);
    set.done.record(current);
    return f;
  }

  // Capture's body, with the instance's lock held and the stream current.
  std::optional<Failure> Record(size_t n, void* stream, const inferd_torch_tensor* inputs,
                                int32_t num_inputs, const inferd_torch_tensor* outputs,
                                int32_t num_outputs) {
    GraphSet& set = *graphs_[n];
    std::vector<at::Tensor> args;
    if (std::optional<Failure> f = WrapAll(inputs, num_inputs, "inputs", &args)) return f;
    set.buffers.resize(args.size());
    Graph g;
    for (size_t i = 0; i < args.size(); ++i) {
      const int64_t bytes = static_cast<int64_t>(args[i].nbytes());
      at::Tensor& buffer = set.buffers[i];
      if (!buffer.defined() || buffer.numel() < bytes) {
        buffer = at::empty({std::max<int64_t>(bytes, 1)},
                           at::TensorOptions().dtype(at::kByte).device(device_));
      }
      // A view keeps its buffer alive when a later, larger one replaces it.
      g.inputs.push_back(
          buffer.narrow(0, 0, bytes).view(args[i].scalar_type()).view(args[i].sizes()));
      g.inputs.back().copy_(args[i], /*non_blocking=*/true);
    }
    // One run first, uncaptured: lazy initialization (plans, workspaces,
    // the allocator's first blocks) must not happen inside the capture.
    {
      std::vector<at::Tensor> in = g.inputs;
      std::vector<at::Tensor> warm;
      if (std::optional<Failure> f = Run(n, stream, in, &warm)) return f;
    }
    g.graph = std::make_unique<at::cuda::CUDAGraph>();
    const cudaStream_t capture = static_cast<cudaStream_t>(stream);
    try {
      // Thread-local: the daemon's other threads keep allocating and
      // synchronizing while this one records.
      g.graph->capture_begin(set.pool, cudaStreamCaptureModeThreadLocal);
      std::vector<at::Tensor> in = g.inputs;
      std::optional<Failure> f = Run(n, stream, in, &g.results);
      g.graph->capture_end();
      if (f.has_value()) return f;
    } catch (...) {
      AbortCapture(*g.graph, capture);
      throw;
    }
    // The first replay checks the results against the config and fills
    // the caller's outputs; a graph that fails it is not kept.
    if (std::optional<Failure> f = Replay(set, g, args, outputs, num_outputs)) return f;
    // Replace a graph of the same shapes, else add one.
    if (Graph* old = set.Find(args)) {
      *old = std::move(g);
    } else {
      set.graphs.push_back(std::move(g));
    }
    return std::nullopt;
  }

  // Ends a capture that failed midway, so that the stream serves again.
  static void AbortCapture(at::cuda::CUDAGraph& graph, cudaStream_t stream) {
    try {
      graph.capture_end();
    } catch (...) {
    }
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream, &status) == cudaSuccess &&
        status != cudaStreamCaptureStatusNone) {
      cudaGraph_t partial = nullptr;
      if (cudaStreamEndCapture(stream, &partial) == cudaSuccess && partial != nullptr) {
        cudaGraphDestroy(partial);
      }
    }
    (void)cudaGetLastError();  // a failed capture's error is not sticky
  }
#endif

  explicit TorchModel(const inferd_torch_load_options& o)
      : path_(o.path), device_(DeviceOf(o)), num_instances_(std::max(o.num_instances, 1)) {
    for (int32_t i = 0; i < o.num_inputs; ++i) input_names_.emplace_back(o.input_names[i]);
    for (int32_t i = 0; i < o.num_outputs; ++i) output_names_.emplace_back(o.output_names[i]);
#ifdef INFERD_TORCH_WITH_CUDA
    if (o.cuda_graphs != 0 && device_.is_cuda()) {
      for (int i = 0; i < num_instances_; ++i) graphs_.push_back(std::make_unique<GraphSet>());
    }
#endif
  }

  Wrapped Wrap(const inferd_torch_tensor& t, const char* list, int32_t i) const {
    std::optional<c10::ScalarType> type = ScalarTypeOf(t.dtype);
    if (!type.has_value()) {
      return {at::Tensor(), Failure{INFERD_TORCH_INVALID_ARGUMENT,
                                    std::string(list) + "[" + std::to_string(i) + "]: datatype " +
                                        DtypeName(t.dtype) + " has no torch tensor type"}};
    }
    std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
    return {torch::from_blob(t.data, shape, torch::TensorOptions().dtype(*type).device(device_)),
            std::nullopt};
  }

  std::optional<Failure> LoadTorchScript(const inferd_torch_load_options& o) {
    std::optional<Failure> f = Guarded(
        path_, kFileKey, INFERD_TORCH_INVALID_ARGUMENT, [&]() -> std::optional<Failure> {
          for (int i = 0; i < num_instances_; ++i) {
            torch::jit::Module m = torch::jit::load(path_, device_);
            m.eval();
            modules_.push_back(std::move(m));
          }
          return std::nullopt;
        });
    if (f.has_value()) return Classify(std::move(*f));
    return BindTorchScriptInputs();
  }

  // A load failure that says the file comes from another libtorch is a
  // precondition, not a bad file.
  static Failure Classify(Failure f) {
    for (const char* hint : {"file format version", "Unknown builtin op", "Unknown type name",
                             "undefined symbol", "version_"}) {
      if (f.message.find(hint) != std::string::npos) {
        f.code = INFERD_TORCH_FAILED_PRECONDITION;
        f.message += std::string(" (this backend runs libtorch ") + kLibtorchVersion + ")";
        return f;
      }
    }
    if (f.code == INFERD_TORCH_INVALID_ARGUMENT &&
        f.message.find("zip archive") != std::string::npos) {
      f.message = std::string(kFileKey) + "not a model file (" +
                  f.message.substr(std::strlen(kFileKey)) + ")";
    }
    return f;
  }

  // Binds config inputs to forward's arguments: by name when the names are
  // exactly forward's, else by position.
  std::optional<Failure> BindTorchScriptInputs() {
    const c10::FunctionSchema& schema = modules_[0].get_method("forward").function().getSchema();
    std::vector<std::string> names;
    size_t required = 0;
    for (size_t i = 1; i < schema.arguments().size(); ++i) {  // 0 is self
      names.push_back(schema.arguments()[i].name());
      if (!schema.arguments()[i].default_value().has_value()) required = names.size();
    }
    std::vector<int> position(input_names_.size(), -1);
    bool by_name = true;
    for (size_t i = 0; i < input_names_.size() && by_name; ++i) {
      auto it = std::find(names.begin(), names.end(), input_names_[i]);
      if (it == names.end()) {
        by_name = false;
      } else {
        position[i] = static_cast<int>(it - names.begin());
      }
    }
    if (by_name) {
      for (size_t p = 0; p < required; ++p) {
        if (std::find(position.begin(), position.end(), static_cast<int>(p)) == position.end()) {
          return Failure{INFERD_TORCH_INVALID_ARGUMENT,
                         "inputs: forward's argument '" + names[p] +
                             "' has no default and no config input of that name"};
        }
      }
      arg_position_ = std::move(position);
      // Arguments no input binds keep their defaults.
      call_template_.resize(names.size());
      for (size_t p = 0; p < names.size(); ++p) {
        const std::optional<c10::IValue>& d = schema.arguments()[p + 1].default_value();
        if (d.has_value()) call_template_[p] = *d;
      }
      return std::nullopt;
    }
    if (input_names_.size() < required || input_names_.size() > names.size()) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      return Failure{INFERD_TORCH_INVALID_ARGUMENT,
                     "inputs: config.yaml declares " + std::to_string(input_names_.size()) +
                         " input(s); the model's forward takes " + std::to_string(required) +
                         (required == names.size() ? "" : "-" + std::to_string(names.size())) +
                         " (" + list + ")"};
    }
    for (size_t i = 0; i < position.size(); ++i) position[i] = static_cast<int>(i);
    arg_position_ = std::move(position);
    call_template_.resize(input_names_.size());
    return std::nullopt;
  }

  std::optional<Failure> LoadAoti(const inferd_torch_load_options& o) {
#if INFERD_TORCH_HAS_AOTI
    std::optional<Failure> f = Guarded(
        path_, kFileKey, INFERD_TORCH_INVALID_ARGUMENT, [&]() -> std::optional<Failure> {
          const c10::DeviceIndex index =
              device_.is_cuda() ? device_.index() : static_cast<c10::DeviceIndex>(-1);
          if (graphs_.empty()) {
            // One loader whose runners (one per instance) share the weights.
            aoti_.push_back(std::make_unique<torch::inductor::AOTIModelPackageLoader>(
                path_, "model", /*run_single_threaded=*/false,
                static_cast<size_t>(num_instances_), index));
          } else {
            // A threaded runner waits on events between runs, which a
            // capture forbids; a single-threaded one per instance does not.
            for (int i = 0; i < num_instances_; ++i) {
              aoti_.push_back(std::make_unique<torch::inductor::AOTIModelPackageLoader>(
                  path_, "model", /*run_single_threaded=*/true, /*num_runners=*/1, index));
            }
          }
          return std::nullopt;
        });
    if (f.has_value()) return Classify(std::move(*f));
    std::unordered_map<std::string, std::string> meta = aoti_[0]->get_metadata();
    auto it = meta.find("AOTI_DEVICE_KEY");
    const std::string compiled_for = it == meta.end() ? "unknown" : it->second;
    const std::string want = device_.is_cuda() ? "cuda" : "cpu";
    if (compiled_for != want) {
      aoti_.clear();
      return Failure{INFERD_TORCH_FAILED_PRECONDITION,
                     "torch.file: the package was compiled for " + compiled_for +
                         "; this device needs one compiled for " + want};
    }
    return std::nullopt;
#else
    (void)o;
    return Failure{INFERD_TORCH_UNIMPLEMENTED,
                   std::string("torch.format: aoti needs a torch backend built against libtorch "
                               ">= 2.8; this one has ") +
                       kLibtorchVersion + " (serve a TorchScript export, or rebuild the backend)"};
#endif
  }

  std::optional<Failure> Run(size_t instance, void* stream, std::vector<at::Tensor>& args,
                             std::vector<at::Tensor>* results) {
#if INFERD_TORCH_HAS_AOTI
    if (!aoti_.empty()) {
      *results = aoti_[aoti_.size() == 1 ? 0 : instance]->run(args,
                                                              device_.is_cuda() ? stream : nullptr);
      return std::nullopt;
    }
#else
    (void)stream;
#endif
    std::vector<c10::IValue> call = call_template_;
    for (size_t i = 0; i < args.size(); ++i) call[arg_position_[i]] = std::move(args[i]);
    c10::IValue r = modules_[instance].forward(std::move(call));
    if (r.isGenericDict()) {
      c10::Dict<c10::IValue, c10::IValue> dict = r.toGenericDict();
      for (const std::string& name : output_names_) {
        auto it = dict.find(name);
        if (it == dict.end() || !it->value().isTensor()) {
          return Failure{INFERD_TORCH_MODEL_ERROR,
                         "outputs: the model's result has no tensor named '" + name + "'"};
        }
        results->push_back(it->value().toTensor());
      }
      return std::nullopt;
    }
    if (!Flatten(r, results)) {
      return Failure{INFERD_TORCH_MODEL_ERROR,
                     "outputs: the model returned " + r.tagKind() +
                         ", not a tensor, a tuple or list of tensors, or a dict of tensors"};
    }
    return std::nullopt;
  }

  const std::string path_;
  const c10::Device device_;
  const int num_instances_;
  std::vector<std::string> input_names_;
  std::vector<std::string> output_names_;
  // TorchScript: one module per instance; config input i is argument
  // arg_position_[i] of forward; a call starts as call_template_ (the
  // defaults of arguments no input binds).
  std::vector<torch::jit::Module> modules_;
  std::vector<int> arg_position_;
  std::vector<c10::IValue> call_template_;
#if INFERD_TORCH_HAS_AOTI
  // One loader with a runner per instance, or (CUDA graphs) one
  // single-threaded loader per instance.
  std::vector<std::unique_ptr<torch::inductor::AOTIModelPackageLoader>> aoti_;
#endif
  // CUDA graphs: one set per instance (empty when the model runs without).
  std::vector<std::unique_ptr<GraphSet>> graphs_;
};

// One call of TorchModel::Execute or ::Capture from the C ABI.
using ModelCall = std::optional<Failure> (TorchModel::*)(int32_t, void*,
                                                         const inferd_torch_tensor*, int32_t,
                                                         const inferd_torch_tensor*, int32_t);
int32_t CallModel(ModelCall call, void* model, int32_t instance, void* stream,
                  const inferd_torch_tensor* inputs, int32_t num_inputs,
                  const inferd_torch_tensor* outputs, int32_t num_outputs, char* error,
                  size_t error_size) {
  std::optional<Failure> f = (static_cast<TorchModel*>(model)->*call)(
      instance, stream, inputs, num_inputs, outputs, num_outputs);
  return f.has_value() ? Report(*f, error, error_size) : INFERD_TORCH_OK;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int32_t inferd_torch_api_version(void) {
  return INFERD_TORCH_API_VERSION;
}

__attribute__((visibility("default"))) const char* inferd_torch_libtorch_version(void) {
  return kLibtorchVersion;
}

__attribute__((visibility("default"))) int32_t inferd_torch_supports_aoti(void) {
  return INFERD_TORCH_HAS_AOTI;
}

__attribute__((visibility("default"))) int32_t inferd_torch_load(
    const inferd_torch_load_options* options, void** model, char* error, size_t error_size) {
  if (options == nullptr || model == nullptr || options->path == nullptr ||
      options->struct_size < sizeof(inferd_torch_load_options)) {
    return Report({INFERD_TORCH_INVALID_ARGUMENT, "bad load options"}, error, error_size);
  }
#ifndef INFERD_TORCH_WITH_CUDA
  if (options->device_kind == INFERD_TORCH_DEVICE_CUDA) {
    return Report({INFERD_TORCH_FAILED_PRECONDITION,
                   std::string("this torch backend was built against a libtorch ") +
                       kLibtorchVersion + " without CUDA; it runs models on host devices only"},
                  error, error_size);
  }
#endif
  std::unique_ptr<TorchModel> loaded;
  if (std::optional<Failure> f = TorchModel::Load(*options, &loaded)) {
    return Report(*f, error, error_size);
  }
  *model = loaded.release();
  return INFERD_TORCH_OK;
}

__attribute__((visibility("default"))) int32_t inferd_torch_execute(
    void* model, int32_t instance, void* stream, const inferd_torch_tensor* inputs,
    int32_t num_inputs, const inferd_torch_tensor* outputs, int32_t num_outputs, char* error,
    size_t error_size) {
  return CallModel(&TorchModel::Execute, model, instance, stream, inputs, num_inputs, outputs,
                   num_outputs, error, error_size);
}

__attribute__((visibility("default"))) int32_t inferd_torch_capture(
    void* model, int32_t instance, void* stream, const inferd_torch_tensor* inputs,
    int32_t num_inputs, const inferd_torch_tensor* outputs, int32_t num_outputs, char* error,
    size_t error_size) {
  return CallModel(&TorchModel::Capture, model, instance, stream, inputs, num_inputs, outputs,
                   num_outputs, error, error_size);
}

__attribute__((visibility("default"))) void inferd_torch_destroy(void* model) {
  delete static_cast<TorchModel*>(model);
}

}  // extern "C"
