// Helpers shared by the YAML readers of core/config (the daemon config and
// model configs): how a node is described in error messages. yaml-cpp is
// used only under core/config/.
#ifndef INFERD_CORE_CONFIG_YAML_UTIL_H_
#define INFERD_CORE_CONFIG_YAML_UTIL_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include <yaml-cpp/yaml.h>

namespace inferd::config_internal {

// Double-quotes `s`, escaping quotes, backslashes and control bytes.
std::string Quote(absl::string_view s);
// Describes what a node holds, for "expected X, got Y" messages.
std::string Got(const YAML::Node& node);
// True for an unquoted, untagged scalar (so "4" in quotes stays a string).
bool IsPlainScalar(const YAML::Node& node);

// Most YAML documents a config file may hold before reading stops (the
// readers accept one; the cap only keeps a hostile stream from being
// loaded whole).
inline constexpr size_t kMaxYamlDocuments = 16;

// Loads the documents of `text`, as YAML::LoadAll does, after a first pass
// that only counts: INVALID_ARGUMENT "holds more than 16 YAML documents"
// (naming `what`) before any node is built when there are more, or when
// the event stream is longer than any `text` of this size can hold. May
// throw YAML::Exception for malformed YAML, as LoadAll does.
absl::StatusOr<std::vector<YAML::Node>> LoadDocuments(absl::string_view text,
                                                      absl::string_view what);

}  // namespace inferd::config_internal

#endif  // INFERD_CORE_CONFIG_YAML_UTIL_H_
