/*
 * A configurable plugin for the plugin loader tests, built several times:
 *   -DTEST_PLUGIN_VERSION=N   reports API version N
 *   -DTEST_PLUGIN_NO_EXECUTE  does not export inferd_plugin_execute
 * Otherwise it copies its input to its output, recording the device it was
 * created for and counting live states.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/plugin_api.h"

#ifndef TEST_PLUGIN_VERSION
#define TEST_PLUGIN_VERSION INFERD_PLUGIN_API_VERSION
#endif

static _Thread_local char last_error[128];
static int live_states = 0;

int32_t inferd_plugin_api_version(void) { return TEST_PLUGIN_VERSION; }
const char* inferd_plugin_last_error(void) { return last_error; }

/* For the tests: how many states exist now. */
int test_plugin_live_states(void) { return live_states; }

int32_t inferd_plugin_create(const inferd_plugin_config* config, void** state) {
  for (int32_t i = 0; i < config->num_parameters; ++i) {
    if (strcmp(config->parameters[i].key, "fail_create") == 0) {
      snprintf(last_error, sizeof(last_error), "asked to fail");
      return INFERD_PLUGIN_RESOURCE_EXHAUSTED;
    }
  }
  int* s = (int*)malloc(sizeof(int));
  *s = config->device_index;
  *state = s;
  ++live_states;
  return INFERD_PLUGIN_OK;
}

#ifndef TEST_PLUGIN_NO_EXECUTE
int32_t inferd_plugin_execute(void* state, void* stream, const inferd_tensor* inputs, int32_t n_in,
                              inferd_tensor* outputs, int32_t n_out) {
  (void)state;
  (void)stream;
  if (n_in < 1 || n_out < 1 || outputs[0].byte_size > inputs[0].byte_size) {
    snprintf(last_error, sizeof(last_error), "bad tensors");
    return INFERD_PLUGIN_INVALID_ARGUMENT;
  }
  memcpy(outputs[0].data, inputs[0].data, outputs[0].byte_size);
  return INFERD_PLUGIN_OK;
}
#endif

void inferd_plugin_destroy(void* state) {
  free(state);
  --live_states;
}
