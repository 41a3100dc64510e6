// The strict JSON parser behind safetensors headers and model metadata.
#include <cstddef>
#include <cstdint>

#include "core/util/strict_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = inferd::JsonDocument::Parse(text);
  if (!doc.ok()) return 0;
  // Walk what was parsed the way the readers do.
  const auto& root = doc->node(doc->root());
  for (size_t i = 0; i < root.items.size(); ++i) {
    (void)doc->AsInt64(root.items[i]);
    if (i < root.keys.size()) (void)doc->Find(doc->root(), root.keys[i]);
  }
  return 0;
}
