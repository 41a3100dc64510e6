// libinferd_mlp_cuda.so: the mlp backend on cuBLASLt (see mlp_cuda_api.h).
//
// Row-major y[batch, out] = x[batch, in] W^T + b is, in cuBLASLt's
// column-major terms, D[out, batch] = op(A) B with A = W stored [in, out]
// (ld = in) and op = transpose, B = x stored [in, batch] (ld = in), and the
// bias broadcast along D's rows, which is what the BIAS epilogues do.
// Compute is CUBLAS_COMPUTE_32F (fp32 accumulate, no TF32) for every dtype.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/device/cuda/mlp/mlp_cuda_api.h"
#include "core/device/cuda/mlp/mlp_cuda_kernels.h"

namespace inferd::mlp_cuda {
namespace {

constexpr uint64_t kDefaultWorkspaceBytes = 8ull << 20;
constexpr int32_t kMinAlignmentBytes = 16;

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

// Per-stream buffers.
struct Slot {
  void* workspace = nullptr;
  void* activations[2] = {nullptr, nullptr};
};

// One mlp on one GPU. Thread-safe after Create (see the header).
class MlpCuda {
 public:
  static Error Create(const inferd_mlp_cuda_options& options, std::unique_ptr<MlpCuda>* out);
  ~MlpCuda();

  Error Execute(int32_t slot, cudaStream_t stream, const void* x, void* y, int64_t batch);

 private:
  MlpCuda() = default;
  Error Init(const inferd_mlp_cuda_options& options);
  Error GetPlan(int64_t batch, Plan** plan);
  Error BuildPlan(int64_t batch, Plan* plan);

  // Constant after Create.
  int ordinal_ = 0;
  int32_t dtype_ = INFERD_MLP_FP32;
  int64_t max_batch_ = 0;
  uint64_t workspace_bytes_ = 0;
  cublasLtHandle_t handle_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<Slot> slots_;
  // plans_[b]: the plan for batch b, built on first use (lock-free).
  std::unique_ptr<std::atomic<Plan*>[]> plans_;
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
  workspace_bytes_ = o.workspace_bytes == 0 ? kDefaultWorkspaceBytes : o.workspace_bytes;
  DeviceGuard guard(ordinal_);
  MLP_RETURN_IF_ERROR(FromCuda(cudaSetDevice(ordinal_), "cudaSetDevice"));
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

  slots_.resize(o.num_slots);
  const size_t activation_bytes =
      static_cast<size_t>(max_batch_) * static_cast<size_t>(widest_hidden) * elem;
  for (Slot& s : slots_) {
    MLP_RETURN_IF_ERROR(
        FromCuda(cudaMalloc(&s.workspace, workspace_bytes_), "cudaMalloc(workspace)"));
    for (int k = 0; k < 2 && k + 1 < o.num_layers; ++k) {
      MLP_RETURN_IF_ERROR(FromCuda(cudaMalloc(&s.activations[k], activation_bytes),
                                   "cudaMalloc(activations)"));
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
  for (Slot& s : slots_) {
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
  const Slot& s = slots_[slot];
  const float alpha = 1.0f;
  const float beta = 0.0f;
  const void* in = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    void* out = i + 1 == layers_.size() ? y : s.activations[i % 2];
    MLP_RETURN_IF_ERROR(FromCublas(
        cublasLtMatmul(handle_, l.desc, &alpha, l.weight, plan->a[i], in, plan->b[i], &beta, out,
                       plan->d[i], out, plan->d[i], &plan->algo[i], s.workspace, workspace_bytes_,
                       stream),
        "cublasLtMatmul"));
    if (l.activation == INFERD_MLP_ACT_GELU) {
      MLP_RETURN_IF_ERROR(FromCuda(LaunchGeluErf(dtype_, out, batch * l.out, stream), "gelu"));
    }
    in = out;
  }
  return {};
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

}  // extern "C"
