// Safetensors: the weights file format that
// `safetensors.torch.save_file(model.state_dict(), path)` writes:
//
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   JSON: {"<tensor>": {"dtype": "F32", "shape": [out, in],
//                                 "data_offsets": [begin, end]}, ...,
//                    "__metadata__": {"<key>": "<value>", ...}}
//             (may be padded with trailing spaces)
//   the rest  tensor data; offsets are relative to its start
//
// Reading is strict, as the reference implementation is: every offset and
// size is checked with overflow-checked arithmetic, the tensors must tile
// the data section exactly (sorted by offset, no gaps, no overlaps), and
// each tensor's byte range must equal its shape product times its dtype
// size. Every problem is INVALID_ARGUMENT naming the tensor and field.
#ifndef INFERD_CORE_MODELS_SAFETENSORS_H_
#define INFERD_CORE_MODELS_SAFETENSORS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/tensor/dtype.h"

namespace inferd {

// Header lengths above this are rejected (the reference reader's limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  absl::Span<const uint8_t> data;  // points into the owning SafetensorsFile
};

// A parsed safetensors file held in memory. Immutable; thread-safe.
class SafetensorsFile {
 public:
  // Parses a whole file's bytes (takes ownership of them).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(std::string bytes);
  // Reads and parses `path`. NOT_FOUND when it cannot be opened;
  // INVALID_ARGUMENT when larger than `max_bytes` or malformed.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> ReadFile(const std::string& path,
                                                                   uint64_t max_bytes);

  // Returns the tensor named `name`, or nullptr.
  const SafetensorsTensor* Find(absl::string_view name) const;
  // All tensors, in data order.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  // "__metadata__", sorted by key.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;

  std::string bytes_;
  std::vector<SafetensorsTensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// A tensor to write; `bytes` is borrowed for the call.
struct SafetensorsEntry {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  absl::string_view bytes;
};

// Returns the file bytes for `tensors` (in the given order) and `metadata`,
// laid out as the reference writer does (header padded with spaces to a
// multiple of 8 bytes). INVALID_ARGUMENT for duplicate names, an
// unsupported dtype or bytes that do not match the shape.
absl::StatusOr<std::string> SerializeSafetensors(
    absl::Span<const SafetensorsEntry> tensors,
    const std::vector<std::pair<std::string, std::string>>& metadata = {});

// The safetensors dtype name ("F32", "BF16", ...) of `dtype`; "" when the
// format has none (BYTES, INVALID).
absl::string_view SafetensorsDtypeName(DataType dtype);

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_SAFETENSORS_H_
