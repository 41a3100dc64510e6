// Helpers shared by the YAML readers of core/config (the daemon config and
// model configs): how a node is described in error messages. yaml-cpp is
// used only under core/config/.
#ifndef INFERD_CORE_CONFIG_YAML_UTIL_H_
#define INFERD_CORE_CONFIG_YAML_UTIL_H_

#include <string>

#include "absl/strings/string_view.h"
#include <yaml-cpp/yaml.h>

namespace inferd::config_internal {

// Double-quotes `s`, escaping quotes, backslashes and control bytes.
std::string Quote(absl::string_view s);
// Describes what a node holds, for "expected X, got Y" messages.
std::string Got(const YAML::Node& node);
// True for an unquoted, untagged scalar (so "4" in quotes stays a string).
bool IsPlainScalar(const YAML::Node& node);

}  // namespace inferd::config_internal

#endif  // INFERD_CORE_CONFIG_YAML_UTIL_H_
