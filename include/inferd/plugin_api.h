/*
 * inferd plugin C ABI: how a model backend in a shared library (TensorRT,
 * ONNX Runtime, libtorch, hand-written CUDA...) plugs into inferd.
 *
 * A model folder whose config.yaml says `backend: plugin` names a library
 * (relative to the folder). inferd loads it with dlopen(RTLD_NOW |
 * RTLD_LOCAL), resolves the functions below with dlsym, checks
 * inferd_plugin_api_version() == INFERD_PLUGIN_API_VERSION, then calls
 * inferd_plugin_create once per device the model runs on. Requests call
 * inferd_plugin_execute; unloading the model calls inferd_plugin_destroy
 * for each state, then dlclose.
 *
 * Threading: inferd_plugin_execute may be called concurrently for the same
 * state from several threads (one per stream of the device), so it must
 * be reentrant. create and destroy are never concurrent with other calls
 * on the same state.
 *
 * Devices: on a CUDA device, `stream` is the cudaStream_t to enqueue work on
 * and tensor data are device pointers on that device; execute should
 * enqueue and return without synchronizing. On a host device, `stream` is
 * NULL, data are host pointers, and execute runs synchronously on the
 * host stream's worker thread, in stream order. A plugin that does not
 * support a device kind returns INFERD_PLUGIN_UNSUPPORTED from create.
 *
 * Errors: every function returning inferd_plugin_status returns
 * INFERD_PLUGIN_OK or an error; after an error, inferd_plugin_last_error()
 * on the same thread returns a message (valid until the next call on that
 * thread). Messages reach clients: do not put secrets or paths in them.
 *
 * Shapes: inferd computes output shapes before execute from config.yaml:
 * each -1 in an output's dims takes the same-position dim of the first
 * input (the batch). Outputs arrive allocated with the right byte size.
 *
 * This header is plain C99 and includes nothing from inferd or CUDA.
 */
#ifndef INFERD_PLUGIN_API_H_
#define INFERD_PLUGIN_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to the structs or functions below. */
#define INFERD_PLUGIN_API_VERSION 1

typedef enum inferd_plugin_status {
  INFERD_PLUGIN_OK = 0,
  INFERD_PLUGIN_INVALID_ARGUMENT = 1, /* bad parameter or tensor: the caller's fault */
  INFERD_PLUGIN_UNSUPPORTED = 2,      /* device kind, dtype or feature not supported */
  INFERD_PLUGIN_RESOURCE_EXHAUSTED = 3, /* out of memory */
  INFERD_PLUGIN_INTERNAL = 4          /* anything else */
} inferd_plugin_status;

typedef enum inferd_device_kind {
  INFERD_DEVICE_HOST = 0,
  INFERD_DEVICE_CUDA = 1
} inferd_device_kind;

/* Element types, numbered as inferd's DataType (KServe v2 names). */
typedef enum inferd_dtype {
  INFERD_DTYPE_INVALID = 0,
  INFERD_DTYPE_BOOL = 1,
  INFERD_DTYPE_UINT8 = 2,
  INFERD_DTYPE_UINT16 = 3,
  INFERD_DTYPE_UINT32 = 4,
  INFERD_DTYPE_UINT64 = 5,
  INFERD_DTYPE_INT8 = 6,
  INFERD_DTYPE_INT16 = 7,
  INFERD_DTYPE_INT32 = 8,
  INFERD_DTYPE_INT64 = 9,
  INFERD_DTYPE_FP16 = 10,
  INFERD_DTYPE_BF16 = 11,
  INFERD_DTYPE_FP32 = 12,
  INFERD_DTYPE_FP64 = 13,
  INFERD_DTYPE_BYTES = 14
} inferd_dtype;

/* One plugin.parameters entry from config.yaml. */
typedef struct inferd_plugin_parameter {
  const char* key;
  const char* value;
} inferd_plugin_parameter;

/* What inferd_plugin_create gets. Borrowed for the call only: copy what
 * you keep. */
typedef struct inferd_plugin_config {
  uint32_t struct_size;   /* sizeof(inferd_plugin_config) of the caller */
  int32_t device_kind;    /* inferd_device_kind */
  int32_t device_ordinal; /* CUDA ordinal, or the host device number */
  int32_t device_index;   /* inferd's device index */
  const char* model_name;
  const char* model_version;
  const char* model_dir;  /* absolute path of the model's folder */
  int32_t max_batch_size;
  int32_t num_parameters;
  const inferd_plugin_parameter* parameters; /* sorted by key */
} inferd_plugin_config;

/* A tensor passed to execute. Inputs are read-only; outputs are written. */
typedef struct inferd_tensor {
  const char* name;
  int32_t dtype;         /* inferd_dtype */
  int32_t ndim;
  const int64_t* shape;  /* ndim entries */
  void* data;            /* device pointer (CUDA) or host pointer */
  uint64_t byte_size;
} inferd_tensor;

/* The functions a plugin exports (all required). */
int32_t inferd_plugin_api_version(void);
int32_t inferd_plugin_create(const inferd_plugin_config* config, void** state);
int32_t inferd_plugin_execute(void* state, void* stream, const inferd_tensor* inputs, int32_t n_in,
                              inferd_tensor* outputs, int32_t n_out);
void inferd_plugin_destroy(void* state);
const char* inferd_plugin_last_error(void);

/* Function pointer types, for loaders. */
typedef int32_t (*inferd_plugin_api_version_fn)(void);
typedef int32_t (*inferd_plugin_create_fn)(const inferd_plugin_config*, void**);
typedef int32_t (*inferd_plugin_execute_fn)(void*, void*, const inferd_tensor*, int32_t,
                                            inferd_tensor*, int32_t);
typedef void (*inferd_plugin_destroy_fn)(void*);
typedef const char* (*inferd_plugin_last_error_fn)(void);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* INFERD_PLUGIN_API_H_ */
