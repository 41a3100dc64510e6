// The config key table: one row per key with its type, range (the one
// source of truth for it), unit and documentation. config.cc parses,
// validates and describes the config from it. Internal to core/config.
#ifndef INFERD_CORE_CONFIG_CONFIG_KEYS_H_
#define INFERD_CORE_CONFIG_CONFIG_KEYS_H_

#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "core/config/config.h"

namespace inferd::config_internal {

// Most rules scaling.rules may hold.
inline constexpr size_t kMaxScalingRules = 64;

// Shortest decimal text that reads back as exactly `v`; always has a '.' or
// an exponent so it reads as a double.
std::string FormatDouble(double v);
// A value as YAML text that parses back to it.
std::string FormatValue(bool v);
std::string FormatValue(int v);
std::string FormatValue(int64_t v);
std::string FormatValue(double v);
std::string FormatValue(const std::string& v);
std::string FormatValue(const std::vector<int>& v);
std::string FormatValue(const std::vector<ScalingRuleConfig>& rules);

template <typename T>
struct TypedField {
  T* (*mutable_member)(Config*);
  const T* (*member)(const Config*);
  std::function<std::string(const T&)> check;
};

using AnyField =
    std::variant<TypedField<bool>, TypedField<int>, TypedField<int64_t>, TypedField<double>,
                 TypedField<std::string>, TypedField<std::vector<int>>,
                 TypedField<std::vector<ScalingRuleConfig>>>;

struct FieldSpec {
  std::string path;
  std::string unit;
  std::string range;
  std::string doc;
  AnyField field;
};

inline const char* TypeName(const TypedField<bool>&) { return "bool"; }
inline const char* TypeName(const TypedField<int>&) { return "int"; }
inline const char* TypeName(const TypedField<int64_t>&) { return "int"; }
inline const char* TypeName(const TypedField<double>&) { return "double"; }
inline const char* TypeName(const TypedField<std::string>&) { return "string"; }
inline const char* TypeName(const TypedField<std::vector<int>>&) { return "list of int"; }
inline const char* TypeName(const TypedField<std::vector<ScalingRuleConfig>>&) { return "list of rule"; }

// Every key, in file order; the keys of one section stay together.
const std::vector<FieldSpec>& Fields();
// Section paths ("server", "device", "device.multi_gpu", ...) that hold keys.
const absl::flat_hash_set<std::string>& Sections();
// The row of `path`, or null.
const FieldSpec* FindField(absl::string_view path);

}  // namespace inferd::config_internal

#endif  // INFERD_CORE_CONFIG_CONFIG_KEYS_H_
