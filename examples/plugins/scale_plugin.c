/*
 * scale_plugin: an example inferd plugin in plain C. It multiplies every
 * FP32 element of its one input by the `factor` parameter (default 2.0)
 * and writes the result to its one output. Host devices only: on a CUDA
 * device inferd_plugin_create answers INFERD_PLUGIN_UNSUPPORTED.
 *
 * Build: cc -std=c11 -shared -fPIC -I<inferd>/include scale_plugin.c \
 *          -o libscale_plugin.so
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/plugin_api.h"

typedef struct scale_state {
  float factor;
} scale_state;

static _Thread_local char last_error[256];

static int32_t fail(int32_t code, const char* message) {
  snprintf(last_error, sizeof(last_error), "%s", message);
  return code;
}

int32_t inferd_plugin_api_version(void) { return INFERD_PLUGIN_API_VERSION; }

const char* inferd_plugin_last_error(void) { return last_error; }

int32_t inferd_plugin_create(const inferd_plugin_config* config, void** state) {
  if (config == NULL || state == NULL) return fail(INFERD_PLUGIN_INVALID_ARGUMENT, "null argument");
  if (config->device_kind != INFERD_DEVICE_HOST) {
    return fail(INFERD_PLUGIN_UNSUPPORTED, "scale_plugin runs on host devices only");
  }
  float factor = 2.0f;
  for (int32_t i = 0; i < config->num_parameters; ++i) {
    const inferd_plugin_parameter* p = &config->parameters[i];
    if (strcmp(p->key, "factor") == 0) {
      char* end = NULL;
      errno = 0;
      double v = strtod(p->value, &end);
      if (errno != 0 || end == p->value || *end != '\0' || !isfinite(v)) {
        return fail(INFERD_PLUGIN_INVALID_ARGUMENT,
                    "plugin.parameters.factor: expected a finite number");
      }
      factor = (float)v;
    } else {
      char message[200];
      snprintf(message, sizeof(message), "plugin.parameters.%.100s: unknown parameter", p->key);
      return fail(INFERD_PLUGIN_INVALID_ARGUMENT, message);
    }
  }
  scale_state* s = (scale_state*)malloc(sizeof(scale_state));
  if (s == NULL) return fail(INFERD_PLUGIN_RESOURCE_EXHAUSTED, "out of memory");
  s->factor = factor;
  *state = s;
  return INFERD_PLUGIN_OK;
}

int32_t inferd_plugin_execute(void* state, void* stream, const inferd_tensor* inputs, int32_t n_in,
                              inferd_tensor* outputs, int32_t n_out) {
  (void)stream;
  const scale_state* s = (const scale_state*)state;
  if (n_in != 1 || n_out != 1) {
    return fail(INFERD_PLUGIN_INVALID_ARGUMENT, "expects one input and one output");
  }
  if (inputs[0].dtype != INFERD_DTYPE_FP32 || outputs[0].dtype != INFERD_DTYPE_FP32) {
    return fail(INFERD_PLUGIN_UNSUPPORTED, "only FP32 tensors are supported");
  }
  if (outputs[0].byte_size != inputs[0].byte_size) {
    return fail(INFERD_PLUGIN_INVALID_ARGUMENT, "output size differs from input size");
  }
  const float* in = (const float*)inputs[0].data;
  float* out = (float*)outputs[0].data;
  const size_t n = (size_t)(inputs[0].byte_size / sizeof(float));
  for (size_t i = 0; i < n; ++i) out[i] = in[i] * s->factor;
  return INFERD_PLUGIN_OK;
}

void inferd_plugin_destroy(void* state) { free(state); }
