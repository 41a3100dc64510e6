/*
 * The C ABI of libinferd_mlp_cuda.so: the mlp backend's GPU path (dense
 * layers on cuBLASLt with fused bias/activation epilogues). The daemon
 * never links this library: core/models/mlp_model.cc loads it with dlopen
 * when a model runs on a CUDA device, so cuBLASLt's static TLS lands in
 * dynamic TLS (ARCHITECTURE.md, "cuBLAS note").
 *
 * Plain C; includes no CUDA header, so core/models may include it.
 *
 * An instance owns, on one GPU: the layer weights and biases (uploaded by
 * create), a cuBLASLt handle, one matmul descriptor per layer, and per
 * slot (one slot per stream the caller will use) a workspace and two
 * activation buffers of max_batch x widest hidden layer. Matmul plans
 * (layouts + algorithm) are built on first use of each batch size and
 * cached lock-free.
 *
 * Threading: execute may be called concurrently from any threads; calls
 * that share a slot must enqueue on the same stream (the slot's buffers
 * are reused in stream order). create and destroy synchronize the device.
 */
#ifndef INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_API_H_
#define INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define INFERD_MLP_CUDA_API_VERSION 1

enum {
  INFERD_MLP_OK = 0,
  INFERD_MLP_INVALID_ARGUMENT = 1,
  INFERD_MLP_RESOURCE_EXHAUSTED = 2,
  INFERD_MLP_INTERNAL = 3
};

/* Element type of weights, activations, inputs and outputs. */
enum { INFERD_MLP_FP32 = 0, INFERD_MLP_FP16 = 1, INFERD_MLP_BF16 = 2 };

/* relu/gelu_tanh use the RELU_BIAS / GELU_BIAS epilogues; gelu (erf, as
 * torch.nn.GELU()) is the BIAS epilogue plus an elementwise kernel. */
enum {
  INFERD_MLP_ACT_NONE = 0,
  INFERD_MLP_ACT_RELU = 1,
  INFERD_MLP_ACT_GELU = 2,
  INFERD_MLP_ACT_GELU_TANH = 3
};

typedef struct inferd_mlp_cuda_layer {
  int64_t in_features;
  int64_t out_features;
  const void* weight; /* host, [out_features, in_features] row-major */
  const void* bias;   /* host, [out_features], or NULL */
  int32_t activation;
} inferd_mlp_cuda_layer;

typedef struct inferd_mlp_cuda_options {
  int32_t device_ordinal;
  int32_t dtype;
  int32_t num_layers;
  const inferd_mlp_cuda_layer* layers; /* layers[i].out == layers[i+1].in */
  int64_t max_batch;
  int32_t num_slots;
  uint64_t workspace_bytes; /* per slot; 0 picks the default */
} inferd_mlp_cuda_options;

/* Writes a message into error[0..error_len) on failure. */
int32_t inferd_mlp_cuda_api_version(void);
int32_t inferd_mlp_cuda_create(const inferd_mlp_cuda_options* options, void** handle,
                               char* error, size_t error_len);
/* Enqueues y[batch, out] = mlp(x[batch, in]) on `stream` (a cudaStream_t
 * of the instance's device); x and y are device pointers. */
int32_t inferd_mlp_cuda_execute(void* handle, int32_t slot, void* stream, const void* x, void* y,
                                int64_t batch, char* error, size_t error_len);
void inferd_mlp_cuda_destroy(void* handle);

typedef int32_t (*inferd_mlp_cuda_api_version_fn)(void);
typedef int32_t (*inferd_mlp_cuda_create_fn)(const inferd_mlp_cuda_options*, void**, char*, size_t);
typedef int32_t (*inferd_mlp_cuda_execute_fn)(void*, int32_t, void*, const void*, void*, int64_t,
                                              char*, size_t);
typedef void (*inferd_mlp_cuda_destroy_fn)(void*);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_API_H_ */
