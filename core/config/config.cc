// The YAML loader. One table (config_keys.h) describes every key; parsing,
// unknown-key detection, validation, DescribeConfig() and ConfigKeys() are
// driven by it. yaml-cpp throws; every call into it is inside ParseConfig's
// try block, so no exception leaves this file.
#include "core/config/config.h"

#include <yaml-cpp/yaml.h>

#include "absl/strings/match.h"
#include "core/config/config_keys.h"
#include "core/config/yaml_util.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

using config_internal::FieldSpec;
using config_internal::Fields;
using config_internal::FindField;
using config_internal::FormatValue;
using config_internal::Got;
using config_internal::IsPlainScalar;
using config_internal::kMaxScalingRules;
using config_internal::LoadDocuments;
using config_internal::Quote;
using config_internal::Sections;
using config_internal::TypeName;

constexpr int64_t kIntMax = std::numeric_limits<int>::max();
constexpr int64_t kMaxFileBytes = int64_t{1} << 20;

// ---------------------------------------------------------------------------
// Reading YAML nodes. Each returns "" on success, else the problem.



std::string ReadInt64(const YAML::Node& node, const std::string& range, int64_t* out) {
  std::string expected = absl::StrCat("expected an integer, got ", Got(node));
  if (!IsPlainScalar(node)) return expected;
  const std::string& text = node.Scalar();
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, *out);
  if (ec == std::errc::result_out_of_range) {
    return absl::StrCat(text, " does not fit in 64 bits; range ", range);
  }
  if (ec != std::errc() || ptr != end || begin == end) return expected;
  return "";
}

std::string ReadValue(const YAML::Node& node, const std::string& range, int64_t* out) {
  return ReadInt64(node, range, out);
}

std::string ReadValue(const YAML::Node& node, const std::string& range, int* out) {
  int64_t wide = 0;
  std::string problem = ReadInt64(node, range, &wide);
  if (!problem.empty()) return problem;
  if (wide < std::numeric_limits<int>::min() || wide > kIntMax) {
    return absl::StrCat(wide, " is out of range ", range);
  }
  *out = static_cast<int>(wide);
  return "";
}

std::string ReadValue(const YAML::Node& node, const std::string& range, double* out) {
  std::string expected = absl::StrCat("expected a number, got ", Got(node));
  if (!IsPlainScalar(node)) return expected;
  const std::string& text = node.Scalar();
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, *out, std::chars_format::general);
  if (ec != std::errc() || ptr != end || begin == end || !std::isfinite(*out)) {
    return expected;
  }
  return "";
}

std::string ReadValue(const YAML::Node& node, const std::string&, bool* out) {
  if (IsPlainScalar(node) && node.Scalar() == "true") {
    *out = true;
    return "";
  }
  if (IsPlainScalar(node) && node.Scalar() == "false") {
    *out = false;
    return "";
  }
  return absl::StrCat("expected true or false, got ", Got(node));
}

std::string ReadValue(const YAML::Node& node, const std::string&, std::string* out) {
  if (node.IsNull()) return "expected a string, got null (write \"\" for empty)";
  if (!node.IsScalar()) return absl::StrCat("expected a string, got ", Got(node));
  *out = node.Scalar();
  return "";
}

std::string ReadValue(const YAML::Node& node, const std::string& range, std::vector<int>* out) {
  if (!node.IsSequence()) return absl::StrCat("expected a list, got ", Got(node));
  std::vector<int> values;
  for (size_t i = 0; i < node.size(); ++i) {
    int value = 0;
    std::string problem = ReadValue(node[i], "[0, inf)", &value);
    if (!problem.empty()) return absl::StrCat("item ", i, ": ", problem);
    values.push_back(value);
  }
  *out = std::move(values);
  return "";
}

// A problem starting with "[" names an element below `path` ("[1].metric: ...").
// scaling.rules: a list of maps, each with exactly the five rule keys.
std::string ReadValue(const YAML::Node& node, const std::string&,
                      std::vector<ScalingRuleConfig>* out) {
  if (!node.IsSequence()) return absl::StrCat("expected a list, got ", Got(node));
  static constexpr const char* kRuleKeys[] = {"direction", "metric", "comparison", "threshold",
                                              "hold_seconds"};
  std::vector<ScalingRuleConfig> rules;
  for (size_t i = 0; i < node.size() && i <= kMaxScalingRules; ++i) {
    const YAML::Node item = node[i];
    const std::string at = absl::StrCat("[", i, "]");
    if (!item.IsMap()) {
      return absl::StrCat(at, ": expected a map with ", absl::StrJoin(kRuleKeys, ", "), "; got ",
                          Got(item));
    }
    ScalingRuleConfig rule;
    std::set<std::string> seen;
    for (const auto& entry : item) {
      if (!entry.first.IsScalar()) {
        return absl::StrCat(at, ": expected a key, got ", Got(entry.first));
      }
      const std::string& key = entry.first.Scalar();
      const std::string field = absl::StrCat(at, ".", key);
      if (!seen.insert(key).second) return absl::StrCat(field, ": duplicate key");
      std::string problem;
      if (key == "direction") {
        problem = ReadValue(entry.second, "", &rule.direction);
      } else if (key == "metric") {
        problem = ReadValue(entry.second, "", &rule.metric);
      } else if (key == "comparison") {
        problem = ReadValue(entry.second, "", &rule.comparison);
      } else if (key == "threshold") {
        problem = ReadValue(entry.second, "", &rule.threshold);
      } else if (key == "hold_seconds") {
        problem = ReadValue(entry.second, "", &rule.hold_seconds);
      } else {
        return absl::StrCat(field, ": unknown key (a rule has ", absl::StrJoin(kRuleKeys, ", "),
                            ")");
      }
      if (!problem.empty()) return absl::StrCat(field, ": ", problem);
    }
    for (const char* key : kRuleKeys) {
      if (!seen.contains(key)) return absl::StrCat(at, ".", key, ": missing");
    }
    rules.push_back(std::move(rule));
  }
  if (node.size() > kMaxScalingRules) {
    return absl::StrCat(node.size(), " rules exceed the limit of ", kMaxScalingRules);
  }
  *out = std::move(rules);
  return "";
}

absl::Status KeyError(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, absl::StartsWith(problem, "[") ? "" : ": ", problem));
}

// Parses `node` into the member `spec` describes and checks its range.
absl::Status ParseField(const FieldSpec& spec, const YAML::Node& node, Config* config) {
  return std::visit(
      [&](const auto& field) -> absl::Status {
        auto value = *field.member(config);
        std::string problem = ReadValue(node, spec.range, &value);
        if (problem.empty()) problem = field.check(value);
        if (!problem.empty()) return KeyError(spec.path, problem);
        *field.mutable_member(config) = std::move(value);
        return absl::OkStatus();
      },
      spec.field);
}

// Walks the map `node` found at `prefix` ("" for the document root).
absl::Status ParseSection(const YAML::Node& node, const std::string& prefix, Config* config,
                          absl::flat_hash_set<std::string>* seen,
                          std::vector<std::string>* keys_set) {
  if (node.IsNull()) return absl::OkStatus();  // a section with only comments
  if (!node.IsMap()) {
    return KeyError(prefix.empty() ? "(top level)" : prefix,
                    absl::StrCat("expected a map, got ", Got(node)));
  }
  for (const auto& entry : node) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      return KeyError(prefix.empty() ? "(top level)" : prefix,
                      absl::StrCat("expected a key, got ", Got(key)));
    }
    std::string path = prefix.empty() ? key.Scalar() : absl::StrCat(prefix, ".", key.Scalar());
    if (!seen->insert(path).second) return KeyError(path, "duplicate key");
    if (absl::StrContains(key.Scalar(), '.')) {
      return KeyError(path, "unknown key (write sections as nested maps, not dotted keys)");
    }
    if (const FieldSpec* spec = FindField(path); spec != nullptr) {
      RETURN_IF_ERROR(ParseField(*spec, entry.second, config));
      if (keys_set != nullptr) keys_set->push_back(path);
    } else if (Sections().contains(path)) {
      RETURN_IF_ERROR(ParseSection(entry.second, path, config, seen, keys_set));
    } else {
      return KeyError(path, "unknown key");
    }
  }
  return absl::OkStatus();
}

// Each key on its own; ValidateConfig adds the checks across keys once flags
// have been applied.
absl::Status ValidateFields(const Config& config) {
  for (const FieldSpec& spec : Fields()) {
    std::string problem = std::visit(
        [&](const auto& field) { return field.check(*field.member(&config)); }, spec.field);
    if (!problem.empty()) return KeyError(spec.path, problem);
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseYaml(absl::string_view yaml_text, std::vector<std::string>* keys_set) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> documents, LoadDocuments(yaml_text, "config"));
  Config config;
  if (documents.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("config holds ", documents.size(), " YAML documents; expected one"));
  }
  if (!documents.empty()) {
    absl::flat_hash_set<std::string> seen;
    RETURN_IF_ERROR(ParseSection(documents[0], "", &config, &seen, keys_set));
  }
  RETURN_IF_ERROR(ValidateFields(config));
  return config;
}

}  // namespace

absl::StatusOr<Config> ParseConfig(absl::string_view yaml_text) {
  return ParseConfig(yaml_text, nullptr);
}

absl::StatusOr<Config> ParseConfig(absl::string_view yaml_text,
                                   std::vector<std::string>* keys_set) {
  std::vector<std::string> keys;
  absl::StatusOr<Config> config;
  try {
    config = ParseYaml(yaml_text, &keys);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("YAML syntax error at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config could not be parsed: ", e.what()));
  }
  if (config.ok() && keys_set != nullptr) {
    keys_set->insert(keys_set->end(), keys.begin(), keys.end());
  }
  return config;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": not found or not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be opened"));
  std::string text;
  char buffer[4096];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (static_cast<int64_t>(text.size()) > kMaxFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", kMaxFileBytes, " bytes"));
    }
  }
  if (in.bad()) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  absl::StatusOr<Config> config = ParseConfig(text);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

absl::Status ValidateConfig(const Config& config) {
  RETURN_IF_ERROR(ValidateFields(config));
  const ServerConfig& s = config.server;
  if (s.tls.cert_file.empty() != s.tls.key_file.empty()) {
    return KeyError(s.tls.cert_file.empty() ? "server.tls.cert_file" : "server.tls.key_file",
                    "must be set together with the other of cert_file and key_file");
  }
  if (!s.tls.client_ca_file.empty() && !s.tls.enabled()) {
    return KeyError("server.tls.client_ca_file", "needs server.tls.cert_file and key_file");
  }
  if (!IsLoopbackAddress(s.grpc_listen) && s.auth.enabled() && !s.tls.enabled()) {
    return KeyError("server.auth.tokens_file",
                    absl::StrCat("needs server.tls when grpc_listen (", Quote(s.grpc_listen),
                                 ") is beyond loopback: tokens would cross the network in "
                                 "clear text"));
  }
  if (!IsLoopbackAddress(s.grpc_listen) && !s.tls.enabled() && !s.auth.enabled() &&
      !s.allow_insecure_non_loopback) {
    return KeyError("server.grpc_listen",
                    absl::StrCat(Quote(s.grpc_listen), " is beyond loopback with neither "
                                 "server.tls nor server.auth; set one, or set "
                                 "server.allow_insecure_non_loopback: true"));
  }
  return absl::OkStatus();
}

bool IsLoopbackAddress(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:") || absl::StartsWith(address, "unix:");
}

std::string DescribeConfig(const Config& config) {
  std::string out;
  std::vector<std::string> open;  // the sections the previous key was in
  for (const FieldSpec& spec : Fields()) {
    std::vector<std::string> parts = absl::StrSplit(spec.path, '.');
    std::string leaf = parts.back();
    parts.pop_back();
    size_t common = 0;
    while (common < open.size() && common < parts.size() && open[common] == parts[common]) {
      ++common;
    }
    if (common == 0 && !out.empty()) out += "\n";
    for (size_t i = common; i < parts.size(); ++i) {
      absl::StrAppend(&out, std::string(2 * i, ' '), parts[i], ":\n");
    }
    open = parts;
    std::string indent(2 * parts.size(), ' ');
    absl::StrAppend(&out, indent, "# ", spec.doc, ".\n", indent, "# ");
    if (!spec.unit.empty()) absl::StrAppend(&out, "Unit: ", spec.unit, ". ");
    absl::StrAppend(&out, "Range: ", spec.range, ".\n");
    std::string value = std::visit(
        [&](const auto& field) { return FormatValue(*field.member(&config)); }, spec.field);
    absl::StrAppend(&out, indent, leaf, ": ", value, "\n");
  }
  return out;
}

std::vector<ConfigKeyInfo> ConfigKeys() {
  std::vector<ConfigKeyInfo> keys;
  for (const FieldSpec& spec : Fields()) {
    const char* type = std::visit([](const auto& field) { return TypeName(field); }, spec.field);
    keys.push_back({spec.path, type, spec.unit, spec.range, spec.doc});
  }
  return keys;
}

}  // namespace inferd
