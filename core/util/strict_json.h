// StrictJson: a small, strict JSON (RFC 8259) parser for headers of files
// the daemon reads (the safetensors header). It parses iteratively (no
// recursion, so nesting depth costs no stack), bounds depth and node count,
// rejects duplicate object keys, trailing garbage other than whitespace,
// control characters in strings and invalid escapes. Numbers are kept as
// their literal text; AsInt64 reads integers exactly.
//
// The parsed document is a flat array of nodes (index 0 is the root), so
// destroying it is not recursive either.
//
// Thread-safety: a JsonDocument is immutable after parsing; concurrent
// reads are safe.
#ifndef INFERD_CORE_UTIL_STRICT_JSON_H_
#define INFERD_CORE_UTIL_STRICT_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace inferd {

enum class JsonType : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

struct JsonLimits {
  int max_depth = 16;
  int64_t max_nodes = 1 << 22;
};

class JsonDocument {
 public:
  using NodeId = uint32_t;

  struct Node {
    JsonType type = JsonType::kNull;
    bool bool_value = false;
    std::string text;                // string value, or the number's literal
    std::vector<NodeId> items;       // array elements / object values
    std::vector<std::string> keys;   // object keys, parallel to items
  };

  // Parses `text`. INVALID_ARGUMENT naming the byte offset and the problem.
  static absl::StatusOr<JsonDocument> Parse(absl::string_view text,
                                            const JsonLimits& limits = JsonLimits());

  NodeId root() const { return 0; }
  const Node& node(NodeId id) const { return nodes_[id]; }

  // Returns the value of `key` in object `object`, or nullopt when absent
  // (or `object` is not an object).
  std::optional<NodeId> Find(NodeId object, absl::string_view key) const;

  // Returns the integer value of a number node written without fraction or
  // exponent that fits in int64; nullopt otherwise.
  std::optional<int64_t> AsInt64(NodeId id) const;

 private:
  std::vector<Node> nodes_;
};

absl::string_view JsonTypeName(JsonType type);

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_STRICT_JSON_H_
