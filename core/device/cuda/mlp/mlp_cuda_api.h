/*
 * The C ABI of libinferd_mlp_cuda.so: the mlp backend's GPU path (dense
 * layers on cuBLASLt with fused bias/activation epilogues). The daemon
 * never links this library: core/models/mlp_model.cc loads it with dlopen
 * when a model runs on a CUDA device, so cuBLASLt's static TLS lands in
 * dynamic TLS (docs/ARCHITECTURE.md, "cuBLAS and libtorch").
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
 * CUDA graphs (on unless options.disable_graphs): the first call of a slot
 * at a batch size captures the whole forward -- a copy of x into the
 * slot's input staging buffer, every layer's matmul with its epilogue
 * (and the erf-GELU kernels), a copy of the slot's output staging buffer
 * into y -- on a private capture stream, instantiates it, and later calls
 * of that slot and batch size launch it with one cudaGraphLaunch after
 * pointing the two copy nodes at the call's x and y (should the driver
 * refuse that, the copies are enqueued around a graph of the layers
 * alone). At most
 * max_graphs_per_slot graphs are kept per slot; calls beyond that, and
 * every call after a capture or update error (reported once on stderr),
 * run the eager path.
 *
 * Threading: execute may be called concurrently from any threads; calls
 * that share a slot must enqueue on the same stream (the slot's buffers
 * are reused in stream order; a per-slot lock guards its graphs). create
 * and destroy synchronize the device.
 */
#ifndef INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_API_H_
#define INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define INFERD_MLP_CUDA_API_VERSION 2

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
  int32_t disable_graphs;      /* non-zero: always the eager path */
  int32_t max_graphs_per_slot; /* 0 picks the default (256) */
} inferd_mlp_cuda_options;

/* Counters of one instance, summed over slots. */
typedef struct inferd_mlp_cuda_stats {
  uint64_t graph_launches;   /* calls that ran a captured graph */
  uint64_t eager_calls;      /* calls that ran the eager path */
  uint64_t graphs_captured;  /* graphs instantiated */
  uint64_t graph_failures;   /* captures or launches that failed (then eager) */
  uint64_t repoint_failures; /* copy-node updates the driver refused (then the
                                copies run around the graph) */
} inferd_mlp_cuda_stats;

/* Writes a message into error[0..error_len) on failure. */
int32_t inferd_mlp_cuda_api_version(void);
int32_t inferd_mlp_cuda_create(const inferd_mlp_cuda_options* options, void** handle,
                               char* error, size_t error_len);
/* Enqueues y[batch, out] = mlp(x[batch, in]) on `stream` (a cudaStream_t
 * of the instance's device); x and y are device pointers. */
int32_t inferd_mlp_cuda_execute(void* handle, int32_t slot, void* stream, const void* x, void* y,
                                int64_t batch, char* error, size_t error_len);
void inferd_mlp_cuda_destroy(void* handle);
/* Fills *stats (never fails for a valid handle). */
void inferd_mlp_cuda_get_stats(void* handle, inferd_mlp_cuda_stats* stats);

typedef int32_t (*inferd_mlp_cuda_api_version_fn)(void);
typedef int32_t (*inferd_mlp_cuda_create_fn)(const inferd_mlp_cuda_options*, void**, char*, size_t);
typedef int32_t (*inferd_mlp_cuda_execute_fn)(void*, int32_t, void*, const void*, void*, int64_t,
                                              char*, size_t);
typedef void (*inferd_mlp_cuda_destroy_fn)(void*);
typedef void (*inferd_mlp_cuda_get_stats_fn)(void*, inferd_mlp_cuda_stats*);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* INFERD_CORE_DEVICE_CUDA_MLP_MLP_CUDA_API_H_ */
