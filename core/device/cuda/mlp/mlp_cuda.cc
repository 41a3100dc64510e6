// libinferd_mlp_cuda.so: the mlp backend on cuBLASLt (see mlp_cuda_api.h).
//
// Row-major y[batch, out] = x[batch, in] W^T + b is, in cuBLASLt's
// column-major terms, D[out, batch] = op(A) B with A = W stored [in, out]
// (ld = in) and op = transpose, B = x stored [in, batch] (ld = in), and the
// bias broadcast along D's rows, which is what the BIAS epilogues do.
// Compute is CUBLAS_COMPUTE_32F (fp32 accumulate, no TF32) for every dtype.
//
// CUDA graphs: a slot's forward at one batch size is captured once on the
// slot's private capture stream (so no other work enqueued on the caller's
// stream can slip into the capture) into a graph
//   copy x -> stage_in  ->  [layers, reading stage_in, writing stage_out]
//   ->  copy stage_out -> y
// The layers always read and write the slot's fixed buffers; only the two
// copy nodes see the caller's pointers, and cudaGraphExecMemcpyNodeSetParams1D
// repoints them before a launch when they changed (that affects later
// launches only, never one already enqueued). Should the driver refuse to
// repoint them, that graph falls back to the layers alone as their own
// graph, with the two copies enqueued around it by cudaMemcpyAsync.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "core/device/cuda/mlp/mlp_cuda_api.h"
#include "core/device/cuda/mlp/mlp_cuda_kernels.h"

namespace inferd::mlp_cuda {
namespace {

// cuBLAS's recommended workspace: 32 MiB on Hopper and later, where
// split-K algorithms for small batches need it (a 64-row forward of a
// 16384-wide layer runs ≈ 25 % faster than with 8 MiB), 8 MiB before.
constexpr uint64_t kDefaultWorkspaceBytes = 8ull << 20;
constexpr uint64_t kHopperWorkspaceBytes = 32ull << 20;
constexpr int32_t kMinAlignmentBytes = 16;
constexpr int32_t kDefaultMaxGraphsPerSlot = 256;

struct Error {
  int32_t code = INFERD_MLP_OK;
  std::string message;
  bool ok() const { return code == INFERD_MLP_OK; }
};

Error FromCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return {};
  (void)cudaGetLastError();  // clear a non-sticky error
  return {e == cudaErrorMemoryAllocation ? INFERD_MLP_RESOURCE_EXHAUSTED : INFERD_MLP_INTERNAL,
          std::string(what) + ": " + cudaGetErrorString(e)};
}

Error FromCublas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return {};
  return {s == CUBLAS_STATUS_ALLOC_FAILED ? INFERD_MLP_RESOURCE_EXHAUSTED : INFERD_MLP_INTERNAL,
          std::string(what) + ": " + cublasLtGetStatusString(s)};
}

#define MLP_RETURN_IF_ERROR(expr) \
  do {                            \
    Error _e = (expr);            \
    if (!_e.ok()) return _e;      \
  } while (0)

// Makes `ordinal` the current device for the scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(int ordinal) {
    if (cudaGetDevice(&previous_) == cudaSuccess && previous_ != ordinal) {
      switched_ = cudaSetDevice(ordinal) == cudaSuccess;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

cudaDataType_t CudaType(int32_t dtype) {
  switch (dtype) {
    case INFERD_MLP_FP16:
      return CUDA_R_16F;
    case INFERD_MLP_BF16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

size_t ElementSize(int32_t dtype) { return dtype == INFERD_MLP_FP32 ? 4 : 2; }

struct Layer {
  int64_t in = 0;
  int64_t out = 0;
  int32_t activation = INFERD_MLP_ACT_NONE;
  void* weight = nullptr;
  void* bias = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
};

// Layouts and algorithms for one batch size, one entry per layer.
struct Plan {
  std::vector<cublasLtMatrixLayout_t> a, b, d;
  std::vector<cublasLtMatmulAlgo_t> algo;
  ~Plan() {
    for (auto* v : {&a, &b, &d}) {
      for (cublasLtMatrixLayout_t l : *v) cublasLtMatrixLayoutDestroy(l);
    }
  }
};

// One slot's forward at one batch size, captured and instantiated.
struct Graph {
  cudaGraph_t graph = nullptr;  // kept: the copy nodes belong to it
  cudaGraphExec_t exec = nullptr;
  cudaGraphNode_t copy_in = nullptr;   // x -> stage_in
  cudaGraphNode_t copy_out = nullptr;  // stage_out -> y
  const void* x = nullptr;             // where the copy nodes point now
  void* y = nullptr;
  cudaGraph_t body = nullptr;            // the layers alone
  cudaGraphExec_t body_exec = nullptr;   // set once repointing failed
  ~Graph() {
    if (body_exec != nullptr) cudaGraphExecDestroy(body_exec);
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (body != nullptr) cudaGraphDestroy(body);
  }
};

// A std::mutex the thread-safety analysis knows (the module links no Abseil
// library; the annotations are header-only).
class ABSL_LOCKABLE SlotMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE SlotLock {
 public:
  explicit SlotLock(SlotMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~SlotLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  SlotLock(const SlotLock&) = delete;
  SlotLock& operator=(const SlotLock&) = delete;

 private:
  SlotMutex* const mu_;
};

// Per-stream buffers and graphs.
struct Slot {
  void* workspace = nullptr;
  void* activations[2] = {nullptr, nullptr};
  // Graph path only: fixed input/output buffers and a capture-only stream.
  void* stage_in = nullptr;
  void* stage_out = nullptr;
  cudaStream_t capture_stream = nullptr;

  SlotMutex mu;
  std::unordered_map<int64_t, std::unique_ptr<Graph>> graphs ABSL_GUARDED_BY(mu);  // by batch
  // A capture or update failed: eager from now on.
  bool graphs_broken ABSL_GUARDED_BY(mu) = false;
};

// One mlp on one GPU. Thread-safe after Create (see the header).
class MlpCuda {
 public:
  static Error Create(const inferd_mlp_cuda_options& options, std::unique_ptr<MlpCuda>* out);
  ~MlpCuda();

  Error Execute(int32_t slot, cudaStream_t stream, const void* x, void* y, int64_t batch);
  inferd_mlp_cuda_stats Stats() const;

 private:
  MlpCuda() = default;
  Error Init(const inferd_mlp_cuda_options& options);
  Error GetPlan(int64_t batch, Plan** plan);
  Error BuildPlan(int64_t batch, Plan* plan);
  // Enqueues the layers on `stream`: x -> ... -> y through s's activations.
  Error Forward(const Slot& s, cudaStream_t stream, const void* x, void* y, int64_t batch,
                const Plan& plan);
  // Runs the forward as s's graph for `batch` (capturing it first when
  // there is none and the slot has room). *ran is false when the caller
  // must run the eager path: no room, or an error (returned).
  Error RunGraph(Slot& s, cudaStream_t stream, const void* x, void* y, int64_t batch,
                 const Plan& plan, bool* ran) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu);
  Error Capture(Slot& s, const void* x, void* y, int64_t batch, const Plan& plan,
                std::unique_ptr<Graph>* out);
  // Points g's copy nodes at x and y; false (nothing changed that matters)
  // when the driver refuses, and the caller uses g's body_exec instead.
  bool Repoint(Graph& g, const Slot& s, const void* x, void* y, int64_t batch);
  void NoteRepointFailure(cudaError_t e);
  size_t InputBytes(int64_t batch) const;
  size_t OutputBytes(int64_t batch) const;

  // Constant after Create.
  int ordinal_ = 0;
  int32_t dtype_ = INFERD_MLP_FP32;
  int64_t max_batch_ = 0;
  uint64_t workspace_bytes_ = 0;
  cublasLtHandle_t handle_ = nullptr;
  bool graphs_ = true;
  size_t max_graphs_per_slot_ = kDefaultMaxGraphsPerSlot;
  std::vector<Layer> layers_;
  std::vector<std::unique_ptr<Slot>> slots_;
  // plans_[b]: the plan for batch b, built on first use (lock-free).
  std::unique_ptr<std::atomic<Plan*>[]> plans_;

  std::atomic<uint64_t> graph_launches_{0};
  std::atomic<uint64_t> eager_calls_{0};
  std::atomic<uint64_t> graphs_captured_{0};
  std::atomic<uint64_t> graph_failures_{0};
  std::atomic<uint64_t> repoint_failures_{0};
  std::atomic<bool> warned_{false};
  std::atomic<bool> warned_repoint_{false};
};

Error MlpCuda::Create(const inferd_mlp_cuda_options& o, std::unique_ptr<MlpCuda>* out) {
  if (o.num_layers < 1 || o.layers == nullptr || o.max_batch < 1 || o.num_slots < 1 ||
      (o.dtype != INFERD_MLP_FP32 && o.dtype != INFERD_MLP_FP16 && o.dtype != INFERD_MLP_BF16)) {
    return {INFERD_MLP_INVALID_ARGUMENT,
            "needs >= 1 layer, max_batch >= 1, num_slots >= 1 and dtype fp32/fp16/bf16"};
  }
  for (int32_t i = 0; i < o.num_layers; ++i) {
    const inferd_mlp_cuda_layer& l = o.layers[i];
    if (l.in_features < 1 || l.out_features < 1 || l.weight == nullptr ||
        l.activation < INFERD_MLP_ACT_NONE || l.activation > INFERD_MLP_ACT_GELU_TANH ||
        (i > 0 && o.layers[i - 1].out_features != l.in_features)) {
      return {INFERD_MLP_INVALID_ARGUMENT,
              "layer " + std::to_string(i) + ": bad features, weight or activation"};
    }
  }
  std::unique_ptr<MlpCuda> mlp(new MlpCuda());
  MLP_RETURN_IF_ERROR(mlp->Init(o));
  *out = std::move(mlp);
  return {};
}

Error MlpCuda::Init(const inferd_mlp_cuda_options& o) {
  ordinal_ = o.device_ordinal;
  dtype_ = o.dtype;
  max_batch_ = o.max_batch;
  graphs_ = o.disable_graphs == 0;
  if (o.max_graphs_per_slot > 0) max_graphs_per_slot_ = static_cast<size_t>(o.max_graphs_per_slot);
  DeviceGuard guard(ordinal_);
  MLP_RETURN_IF_ERROR(FromCuda(cudaSetDevice(ordinal_), "cudaSetDevice"));
  int major = 0;
  MLP_RETURN_IF_ERROR(FromCuda(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ordinal_),
      "cudaDeviceGetAttribute(compute capability)"));
  workspace_bytes_ = o.workspace_bytes != 0 ? o.workspace_bytes
                     : major >= 9           ? kHopperWorkspaceBytes
                                            : kDefaultWorkspaceBytes;
  MLP_RETURN_IF_ERROR(FromCublas(cublasLtCreate(&handle_), "cublasLtCreate"));

  const size_t elem = ElementSize(dtype_);
  const cudaDataType_t type = CudaType(dtype_);
  int64_t widest_hidden = 0;
  layers_.resize(o.num_layers);
  for (int32_t i = 0; i < o.num_layers; ++i) {
    const inferd_mlp_cuda_layer& src = o.layers[i];
    Layer& l = layers_[i];
    l.in = src.in_features;
    l.out = src.out_features;
    l.activation = src.activation;
    if (i + 1 < o.num_layers && l.out > widest_hidden) widest_hidden = l.out;
    const size_t weight_bytes = static_cast<size_t>(l.in) * static_cast<size_t>(l.out) * elem;
    MLP_RETURN_IF_ERROR(FromCuda(cudaMalloc(&l.weight, weight_bytes), "cudaMalloc(weight)"));
    MLP_RETURN_IF_ERROR(FromCuda(cudaMemcpy(l.weight, src.weight, weight_bytes,
                                            cudaMemcpyHostToDevice),
                                 "cudaMemcpy(weight)"));
    if (src.bias != nullptr) {
      const size_t bias_bytes = static_cast<size_t>(l.out) * elem;
      MLP_RETURN_IF_ERROR(FromCuda(cudaMalloc(&l.bias, bias_bytes), "cudaMalloc(bias)"));
      MLP_RETURN_IF_ERROR(FromCuda(cudaMemcpy(l.bias, src.bias, bias_bytes,
                                              cudaMemcpyHostToDevice),
                                   "cudaMemcpy(bias)"));
    }
    MLP_RETURN_IF_ERROR(FromCublas(cublasLtMatmulDescCreate(&l.desc, CUBLAS_COMPUTE_32F,
                                                            CUDA_R_32F),
                                   "cublasLtMatmulDescCreate"));
    const cublasOperation_t trans_a = CUBLAS_OP_T;
    const cublasOperation_t trans_b = CUBLAS_OP_N;
    MLP_RETURN_IF_ERROR(FromCublas(
        cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                       sizeof(trans_a)),
        "set TRANSA"));
    MLP_RETURN_IF_ERROR(FromCublas(
        cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                       sizeof(trans_b)),
        "set TRANSB"));
    const bool bias = l.bias != nullptr;
    cublasLtEpilogue_t epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    if (l.activation == INFERD_MLP_ACT_RELU) {
      epilogue = bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    } else if (l.activation == INFERD_MLP_ACT_GELU_TANH) {
      epilogue = bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    }
    MLP_RETURN_IF_ERROR(FromCublas(
        cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                       sizeof(epilogue)),
        "set EPILOGUE"));
    if (bias) {
      MLP_RETURN_IF_ERROR(FromCublas(
          cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &l.bias,
                                         sizeof(l.bias)),
          "set BIAS_POINTER"));
      MLP_RETURN_IF_ERROR(FromCublas(
          cublasLtMatmulDescSetAttribute(l.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type,
                                         sizeof(type)),
          "set BIAS_DATA_TYPE"));
    }
  }

  const size_t activation_bytes =
      static_cast<size_t>(max_batch_) * static_cast<size_t>(widest_hidden) * elem;
  for (int32_t i = 0; i < o.num_slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    Slot& s = *slots_.back();
    MLP_RETURN_IF_ERROR(
        FromCuda(cudaMalloc(&s.workspace, workspace_bytes_), "cudaMalloc(workspace)"));
    for (int k = 0; k < 2 && k + 1 < o.num_layers; ++k) {
      MLP_RETURN_IF_ERROR(FromCuda(cudaMalloc(&s.activations[k], activation_bytes),
                                   "cudaMalloc(activations)"));
    }
    if (graphs_) {
      MLP_RETURN_IF_ERROR(
          FromCuda(cudaMalloc(&s.stage_in, InputBytes(max_batch_)), "cudaMalloc(stage_in)"));
      MLP_RETURN_IF_ERROR(
          FromCuda(cudaMalloc(&s.stage_out, OutputBytes(max_batch_)), "cudaMalloc(stage_out)"));
      MLP_RETURN_IF_ERROR(FromCuda(
          cudaStreamCreateWithFlags(&s.capture_stream, cudaStreamNonBlocking),
          "cudaStreamCreateWithFlags(capture)"));
    }
  }
  plans_.reset(new std::atomic<Plan*>[static_cast<size_t>(max_batch_) + 1]);
  for (int64_t b = 0; b <= max_batch_; ++b) plans_[b].store(nullptr, std::memory_order_relaxed);
  return {};
}

MlpCuda::~MlpCuda() {
  DeviceGuard guard(ordinal_);
  if (plans_ != nullptr) {
    for (int64_t b = 0; b <= max_batch_; ++b) delete plans_[b].load(std::memory_order_acquire);
  }
  for (auto& slot : slots_) {
    Slot& s = *slot;
    {
      SlotLock lock(&s.mu);
      s.graphs.clear();
    }
    if (s.capture_stream != nullptr) cudaStreamDestroy(s.capture_stream);
    cudaFree(s.stage_in);
    cudaFree(s.stage_out);
    cudaFree(s.workspace);
    cudaFree(s.activations[0]);
    cudaFree(s.activations[1]);
  }
  for (Layer& l : layers_) {
    if (l.desc != nullptr) cublasLtMatmulDescDestroy(l.desc);
    cudaFree(l.weight);
    cudaFree(l.bias);
  }
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

Error MlpCuda::BuildPlan(int64_t batch, Plan* plan) {
  const cudaDataType_t type = CudaType(dtype_);
  cublasLtMatmulPreference_t pref = nullptr;
  MLP_RETURN_IF_ERROR(FromCublas(cublasLtMatmulPreferenceCreate(&pref), "preference"));
  std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>,
                  cublasStatus_t (*)(cublasLtMatmulPreference_t)>
      pref_owner(pref, cublasLtMatmulPreferenceDestroy);
  MLP_RETURN_IF_ERROR(FromCublas(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &workspace_bytes_, sizeof(workspace_bytes_)),
      "set MAX_WORKSPACE_BYTES"));
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    const uint32_t align = kMinAlignmentBytes;
    MLP_RETURN_IF_ERROR(FromCublas(
        cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align)),
        "set MIN_ALIGNMENT"));
  }
  for (const Layer& l : layers_) {
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    MLP_RETURN_IF_ERROR(FromCublas(cublasLtMatrixLayoutCreate(&a, type, l.in, l.out, l.in),
                                   "layout A"));
    plan->a.push_back(a);
    MLP_RETURN_IF_ERROR(FromCublas(cublasLtMatrixLayoutCreate(&b, type, l.in, batch, l.in),
                                   "layout B"));
    plan->b.push_back(b);
    MLP_RETURN_IF_ERROR(FromCublas(cublasLtMatrixLayoutCreate(&d, type, l.out, batch, l.out),
                                   "layout D"));
    plan->d.push_back(d);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    MLP_RETURN_IF_ERROR(FromCublas(cublasLtMatmulAlgoGetHeuristic(handle_, l.desc, a, b, d, d,
                                                                  pref, 1, &result, &found),
                                   "cublasLtMatmulAlgoGetHeuristic"));
    if (found < 1) {
      return {INFERD_MLP_INTERNAL, "cuBLASLt found no algorithm for layer " +
                                       std::to_string(plan->algo.size()) + " at batch " +
                                       std::to_string(batch)};
    }
    plan->algo.push_back(result.algo);
  }
  return {};
}

Error MlpCuda::GetPlan(int64_t batch, Plan** out) {
  Plan* plan = plans_[batch].load(std::memory_order_acquire);
  if (plan == nullptr) {
    auto fresh = std::make_unique<Plan>();
    MLP_RETURN_IF_ERROR(BuildPlan(batch, fresh.get()));
    Plan* expected = nullptr;
    if (plans_[batch].compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) {
      plan = fresh.release();
    } else {
      plan = expected;  // another thread won; ours is destroyed
    }
  }
  *out = plan;
  return {};
}

size_t MlpCuda::InputBytes(int64_t batch) const {
  return static_cast<size_t>(batch) * static_cast<size_t>(layers_.front().in) *
         ElementSize(dtype_);
}

size_t MlpCuda::OutputBytes(int64_t batch) const {
  return static_cast<size_t>(batch) * static_cast<size_t>(layers_.back().out) *
         ElementSize(dtype_);
}

Error MlpCuda::Forward(const Slot& s, cudaStream_t stream, const void* x, void* y, int64_t batch,
                       const Plan& plan) {
  const float alpha = 1.0f;
  const float beta = 0.0f;
  const void* in = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    void* out = i + 1 == layers_.size() ? y : s.activations[i % 2];
    if (GemvApplies(dtype_, batch, l.in, l.weight, in)) {
      MLP_RETURN_IF_ERROR(FromCuda(
          LaunchGemv(dtype_, l.weight, l.bias, in, out, batch, l.in, l.out, l.activation, stream),
          "gemv"));
      in = out;
      continue;
    }
    MLP_RETURN_IF_ERROR(FromCublas(
        cublasLtMatmul(handle_, l.desc, &alpha, l.weight, plan.a[i], in, plan.b[i], &beta, out,
                       plan.d[i], out, plan.d[i], &plan.algo[i], s.workspace, workspace_bytes_,
                       stream),
        "cublasLtMatmul"));
    if (l.activation == INFERD_MLP_ACT_GELU) {
      MLP_RETURN_IF_ERROR(FromCuda(LaunchGeluErf(dtype_, out, batch * l.out, stream), "gelu"));
    }
    in = out;
  }
  return {};
}

Error MlpCuda::Capture(Slot& s, const void* x, void* y, int64_t batch, const Plan& plan,
                       std::unique_ptr<Graph>* out) {
  using GraphOwner = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, cudaError_t (*)(cudaGraph_t)>;
  MLP_RETURN_IF_ERROR(
      FromCuda(cudaStreamBeginCapture(s.capture_stream, cudaStreamCaptureModeThreadLocal),
               "cudaStreamBeginCapture"));
  const Error forward = Forward(s, s.capture_stream, s.stage_in, s.stage_out, batch, plan);
  cudaGraph_t body_raw = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(s.capture_stream, &body_raw);  // always end
  GraphOwner body(body_raw, cudaGraphDestroy);
  MLP_RETURN_IF_ERROR(forward);
  MLP_RETURN_IF_ERROR(FromCuda(ended, "cudaStreamEndCapture"));
  if (body == nullptr) return {INFERD_MLP_INTERNAL, "cudaStreamEndCapture returned no graph"};

  auto g = std::make_unique<Graph>();
  g->body = body.release();
  MLP_RETURN_IF_ERROR(FromCuda(cudaGraphCreate(&g->graph, 0), "cudaGraphCreate"));
  MLP_RETURN_IF_ERROR(FromCuda(cudaGraphAddMemcpyNode1D(&g->copy_in, g->graph, nullptr, 0,
                                                        s.stage_in, x, InputBytes(batch),
                                                        cudaMemcpyDeviceToDevice),
                               "cudaGraphAddMemcpyNode1D(in)"));
  cudaGraphNode_t layers = nullptr;
  MLP_RETURN_IF_ERROR(
      FromCuda(cudaGraphAddChildGraphNode(&layers, g->graph, &g->copy_in, 1, g->body),
               "cudaGraphAddChildGraphNode"));
  MLP_RETURN_IF_ERROR(FromCuda(cudaGraphAddMemcpyNode1D(&g->copy_out, g->graph, &layers, 1, y,
                                                        s.stage_out, OutputBytes(batch),
                                                        cudaMemcpyDeviceToDevice),
                               "cudaGraphAddMemcpyNode1D(out)"));
  MLP_RETURN_IF_ERROR(FromCuda(cudaGraphInstantiate(&g->exec, g->graph, 0), "cudaGraphInstantiate"));
  g->x = x;
  g->y = y;
  *out = std::move(g);
  return {};
}

Error MlpCuda::RunGraph(Slot& s, cudaStream_t stream, const void* x, void* y, int64_t batch,
                        const Plan& plan, bool* ran) {
  *ran = false;
  std::unique_ptr<Graph>& g = s.graphs[batch];
  if (g == nullptr) {
    if (s.graphs.size() > max_graphs_per_slot_) {
      s.graphs.erase(batch);  // no room: this batch size runs eagerly
      return {};
    }
    std::unique_ptr<Graph> fresh;
    const Error e = Capture(s, x, y, batch, plan, &fresh);
    if (!e.ok()) {
      s.graphs.erase(batch);
      return e;
    }
    g = std::move(fresh);
    graphs_captured_.fetch_add(1, std::memory_order_relaxed);
  }
  if (g->body_exec == nullptr && Repoint(*g, s, x, y, batch)) {
    MLP_RETURN_IF_ERROR(FromCuda(cudaGraphLaunch(g->exec, stream), "cudaGraphLaunch"));
    *ran = true;
    return {};
  }
  if (g->body_exec == nullptr) {
    MLP_RETURN_IF_ERROR(
        FromCuda(cudaGraphInstantiate(&g->body_exec, g->body, 0), "cudaGraphInstantiate(body)"));
  }
  // Stream order keeps the staging buffers safe: the copy in runs after the
  // previous call of this slot has read stage_in, and so on.
  MLP_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(s.stage_in, x, InputBytes(batch),
                                               cudaMemcpyDeviceToDevice, stream),
                               "cudaMemcpyAsync(stage_in)"));
  MLP_RETURN_IF_ERROR(FromCuda(cudaGraphLaunch(g->body_exec, stream), "cudaGraphLaunch(body)"));
  MLP_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(y, s.stage_out, OutputBytes(batch),
                                               cudaMemcpyDeviceToDevice, stream),
                               "cudaMemcpyAsync(stage_out)"));
  *ran = true;
  return {};
}

bool MlpCuda::Repoint(Graph& g, const Slot& s, const void* x, void* y, int64_t batch) {
  if (g.x != x) {
    const cudaError_t e = cudaGraphExecMemcpyNodeSetParams1D(
        g.exec, g.copy_in, s.stage_in, x, InputBytes(batch), cudaMemcpyDeviceToDevice);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      NoteRepointFailure(e);
      return false;
    }
    g.x = x;
  }
  if (g.y != y) {
    const cudaError_t e = cudaGraphExecMemcpyNodeSetParams1D(
        g.exec, g.copy_out, y, s.stage_out, OutputBytes(batch), cudaMemcpyDeviceToDevice);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      NoteRepointFailure(e);
      return false;
    }
    g.y = y;
  }
  return true;
}

void MlpCuda::NoteRepointFailure(cudaError_t e) {
  repoint_failures_.fetch_add(1, std::memory_order_relaxed);
  if (!warned_repoint_.exchange(true)) {
    std::fprintf(stderr,
                 "inferd mlp_cuda: cannot repoint a CUDA graph's copy nodes on device %d (%s); "
                 "copying around the graph instead\n",
                 ordinal_, cudaGetErrorString(e));
  }
}

Error MlpCuda::Execute(int32_t slot, cudaStream_t stream, const void* x, void* y, int64_t batch) {
  if (slot < 0 || slot >= static_cast<int32_t>(slots_.size())) {
    return {INFERD_MLP_INVALID_ARGUMENT, "slot " + std::to_string(slot) + " out of range"};
  }
  if (batch < 1 || batch > max_batch_) {
    return {INFERD_MLP_INVALID_ARGUMENT, "batch " + std::to_string(batch) + " out of range"};
  }
  if (reinterpret_cast<uintptr_t>(x) % kMinAlignmentBytes != 0 ||
      reinterpret_cast<uintptr_t>(y) % kMinAlignmentBytes != 0) {
    return {INFERD_MLP_INVALID_ARGUMENT, "input and output must be 16-byte aligned"};
  }
  DeviceGuard guard(ordinal_);
  Plan* plan = nullptr;
  MLP_RETURN_IF_ERROR(GetPlan(batch, &plan));
  Slot& s = *slots_[slot];
  if (graphs_) {
    SlotLock lock(&s.mu);
    if (!s.graphs_broken) {
      bool ran = false;
      const Error e = RunGraph(s, stream, x, y, batch, *plan, &ran);
      if (ran) {
        graph_launches_.fetch_add(1, std::memory_order_relaxed);
        return {};
      }
      if (!e.ok()) {
        // At most a copy into the staging buffers was enqueued; the eager path
        // below computes this call in full.
        s.graphs_broken = true;
        s.graphs.clear();
        graph_failures_.fetch_add(1, std::memory_order_relaxed);
        if (!warned_.exchange(true)) {
          std::fprintf(stderr,
                       "inferd mlp_cuda: CUDA graphs off for slot %d on device %d (%s); "
                       "running eagerly\n",
                       slot, ordinal_, e.message.c_str());
        }
      }
    }
  }
  eager_calls_.fetch_add(1, std::memory_order_relaxed);
  return Forward(s, stream, x, y, batch, *plan);
}

inferd_mlp_cuda_stats MlpCuda::Stats() const {
  inferd_mlp_cuda_stats out{};
  out.graph_launches = graph_launches_.load(std::memory_order_relaxed);
  out.eager_calls = eager_calls_.load(std::memory_order_relaxed);
  out.graphs_captured = graphs_captured_.load(std::memory_order_relaxed);
  out.graph_failures = graph_failures_.load(std::memory_order_relaxed);
  out.repoint_failures = repoint_failures_.load(std::memory_order_relaxed);
  return out;
}

int32_t Report(const Error& e, char* error, size_t error_len) {
  if (!e.ok() && error != nullptr && error_len > 0) {
    std::snprintf(error, error_len, "%s", e.message.c_str());
  }
  return e.code;
}

}  // namespace
}  // namespace inferd::mlp_cuda

extern "C" {

__attribute__((visibility("default"))) int32_t inferd_mlp_cuda_api_version(void) {
  return INFERD_MLP_CUDA_API_VERSION;
}

__attribute__((visibility("default"))) int32_t inferd_mlp_cuda_create(
    const inferd_mlp_cuda_options* options, void** handle, char* error, size_t error_len) {
  using inferd::mlp_cuda::Error;
  using inferd::mlp_cuda::MlpCuda;
  if (options == nullptr || handle == nullptr) {
    return inferd::mlp_cuda::Report({INFERD_MLP_INVALID_ARGUMENT, "null argument"}, error,
                                    error_len);
  }
  std::unique_ptr<MlpCuda> mlp;
  Error e = MlpCuda::Create(*options, &mlp);
  if (e.ok()) *handle = mlp.release();
  return inferd::mlp_cuda::Report(e, error, error_len);
}

__attribute__((visibility("default"))) int32_t inferd_mlp_cuda_execute(
    void* handle, int32_t slot, void* stream, const void* x, void* y, int64_t batch, char* error,
    size_t error_len) {
  auto* mlp = static_cast<inferd::mlp_cuda::MlpCuda*>(handle);
  return inferd::mlp_cuda::Report(
      mlp->Execute(slot, static_cast<cudaStream_t>(stream), x, y, batch), error, error_len);
}

__attribute__((visibility("default"))) void inferd_mlp_cuda_destroy(void* handle) {
  delete static_cast<inferd::mlp_cuda::MlpCuda*>(handle);
}

__attribute__((visibility("default"))) void inferd_mlp_cuda_get_stats(
    void* handle, inferd_mlp_cuda_stats* stats) {
  if (handle == nullptr || stats == nullptr) return;
  *stats = static_cast<const inferd::mlp_cuda::MlpCuda*>(handle)->Stats();
}

}  // extern "C"
