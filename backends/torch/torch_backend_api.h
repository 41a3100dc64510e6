/*
 * The C ABI of libinferd_torch.so, inferd's PyTorch backend.
 *
 * The daemon never links libtorch: it loads this library with
 * dlopen(RTLD_NOW | RTLD_LOCAL) when the first `backend: torch` model is
 * loaded (core/models/torch_library.h), so libtorch's static TLS and its
 * C++ runtime stay out of the daemon's link line. Only the plain C types
 * below cross the boundary, so the library may be built with another
 * compiler or C++ ABI than the daemon (e.g. against the libtorch of a
 * PyTorch wheel).
 *
 * A loaded model is one model file on one device, with N instances (loaded
 * copies). Errors: every function returning int32_t returns
 * INFERD_TORCH_OK or an error code, with a NUL-terminated message written
 * to `error` (truncated to `error_size`). Messages reach clients: the
 * library removes the model file's path from them.
 *
 * Threading: inferd_torch_execute may be called concurrently, also for
 * the same model and instance (TorchScript modules run concurrent calls; an
 * AOTInductor package runs one call per instance at a time and makes a
 * second caller wait). load and destroy are never concurrent with other
 * calls on the same model.
 *
 * Devices: on a CUDA device, `stream` is the cudaStream_t to run on and
 * tensor data are device pointers on that device; execute enqueues the
 * model's kernels and the copies of its outputs on that stream and returns
 * without waiting for them. On a host device, `stream` is NULL, data are
 * host pointers and execute runs the model on the calling thread.
 *
 * Plain C99; includes nothing from inferd, CUDA or libtorch.
 */
#ifndef INFERD_BACKENDS_TORCH_TORCH_BACKEND_API_H_
#define INFERD_BACKENDS_TORCH_TORCH_BACKEND_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change below. */
#define INFERD_TORCH_API_VERSION 2

typedef enum inferd_torch_status {
  INFERD_TORCH_OK = 0,
  INFERD_TORCH_INVALID_ARGUMENT = 1,    /* a file that is no model, a bad tensor */
  INFERD_TORCH_FAILED_PRECONDITION = 2, /* built for another device or libtorch */
  INFERD_TORCH_RESOURCE_EXHAUSTED = 3,  /* out of device or host memory */
  INFERD_TORCH_INTERNAL = 4,            /* anything else */
  INFERD_TORCH_MODEL_ERROR = 5,         /* the model's own code raised */
  INFERD_TORCH_UNIMPLEMENTED = 6        /* format not supported by this libtorch */
} inferd_torch_status;

typedef enum inferd_torch_format {
  INFERD_TORCH_FORMAT_AOTI = 0,       /* AOTInductor package (.pt2) */
  INFERD_TORCH_FORMAT_TORCHSCRIPT = 1 /* TorchScript archive (.pt) */
} inferd_torch_format;

typedef enum inferd_torch_device_kind {
  INFERD_TORCH_DEVICE_HOST = 0, /* runs on the CPU */
  INFERD_TORCH_DEVICE_CUDA = 1
} inferd_torch_device_kind;

/* What inferd_torch_load gets; borrowed for the call only. */
typedef struct inferd_torch_load_options {
  uint32_t struct_size;   /* sizeof(inferd_torch_load_options) of the caller */
  const char* path;       /* the model file, absolute */
  const char* model_name; /* for messages */
  int32_t format;         /* inferd_torch_format */
  int32_t device_kind;    /* inferd_torch_device_kind */
  int32_t device_ordinal; /* CUDA ordinal; ignored on the host */
  int32_t num_instances;  /* >= 1 */
  /* 1: load so that inferd_torch_capture can record CUDA graphs (CUDA
   * devices only; an AOTInductor package then gets one single-threaded
   * loader per instance, whose runs can be captured). */
  int32_t cuda_graphs;
  /* The config's inputs and outputs, in config order. A TorchScript
   * forward whose argument names are exactly the input names is bound by
   * name; otherwise inputs bind by position. Outputs bind by name when the
   * model returns a dict, by position otherwise. */
  int32_t num_inputs;
  const char* const* input_names;
  int32_t num_outputs;
  const char* const* output_names;
} inferd_torch_load_options;

/* One tensor of a call: dense, row-major. Element types are numbered as
 * inferd's DataType (include/inferd/plugin_api.h, inferd_dtype). */
typedef struct inferd_torch_tensor {
  int32_t dtype;
  int32_t ndim;
  const int64_t* shape;
  void* data;
  uint64_t byte_size;
} inferd_torch_tensor;

/* Returns INFERD_TORCH_API_VERSION of the library. */
int32_t inferd_torch_api_version(void);

/* Returns the libtorch version the library was built against, "2.11.0". */
const char* inferd_torch_libtorch_version(void);

/* Returns 1 when the library can load AOTInductor packages. */
int32_t inferd_torch_supports_aoti(void);

/* Loads the model onto the device, num_instances times. On success sets
 * *model (freed with inferd_torch_destroy). */
int32_t inferd_torch_load(const inferd_torch_load_options* options, void** model, char* error,
                          size_t error_size);

/* Runs instance `instance` (taken modulo num_instances) on `inputs` and
 * writes `outputs`, whose shapes and types the caller computed from the
 * config; a model that returns anything else fails with
 * INFERD_TORCH_MODEL_ERROR naming the output. An exception of the model's
 * code is INFERD_TORCH_MODEL_ERROR; a CUDA fault INFERD_TORCH_INTERNAL. */
int32_t inferd_torch_execute(void* model, int32_t instance, void* stream,
                             const inferd_torch_tensor* inputs, int32_t num_inputs,
                             const inferd_torch_tensor* outputs, int32_t num_outputs, char* error,
                             size_t error_size);

/* CUDA devices, models loaded with cuda_graphs = 1: runs instance
 * `instance` once on `inputs` and records that run in a CUDA graph on
 * `stream`, then replays it into `outputs`. Later inferd_torch_execute
 * calls of that instance whose input shapes equal these replay the graph:
 * the inputs are copied into the graph's own buffers, the recorded kernels
 * launched at once, and the results copied to `outputs`, all on the
 * caller's stream. Replays of one instance never overlap, whichever stream
 * they run on. A model that cannot be recorded (it waits for the device,
 * its shapes depend on the data) fails with INFERD_TORCH_INVALID_ARGUMENT
 * and keeps running uncaptured. Never concurrent with other calls of the
 * same instance. */
int32_t inferd_torch_capture(void* model, int32_t instance, void* stream,
                             const inferd_torch_tensor* inputs, int32_t num_inputs,
                             const inferd_torch_tensor* outputs, int32_t num_outputs, char* error,
                             size_t error_size);

void inferd_torch_destroy(void* model);

typedef int32_t (*inferd_torch_api_version_fn)(void);
typedef const char* (*inferd_torch_libtorch_version_fn)(void);
typedef int32_t (*inferd_torch_supports_aoti_fn)(void);
typedef int32_t (*inferd_torch_load_fn)(const inferd_torch_load_options*, void**, char*, size_t);
typedef int32_t (*inferd_torch_execute_fn)(void*, int32_t, void*, const inferd_torch_tensor*,
                                           int32_t, const inferd_torch_tensor*, int32_t, char*,
                                           size_t);
typedef inferd_torch_execute_fn inferd_torch_capture_fn;
typedef void (*inferd_torch_destroy_fn)(void*);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* INFERD_BACKENDS_TORCH_TORCH_BACKEND_API_H_ */
