// A model's config.yaml in a model repository.
#include <cstddef>
#include <cstdint>

#include "core/config/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)inferd::ParseModelConfig(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
