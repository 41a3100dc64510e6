// The daemon's YAML config (configs/inferd.yaml).
#include <cstddef>
#include <cstdint>

#include "core/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = inferd::ParseConfig(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (config.ok()) (void)inferd::DescribeConfig(*config);
  return 0;
}
