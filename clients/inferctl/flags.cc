#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "clients/inferctl/commands.h"

namespace inferd::inferctl {
namespace {

// Fills `target` from `value` (nullopt: the flag had no "=value").
// Returns an error text, or "" when it worked.
std::string Assign(const Flag& flag, std::optional<absl::string_view> value) {
  struct Visitor {
    std::optional<absl::string_view> value;
    std::string operator()(bool* b) const {
      if (!value || *value == "true" || *value == "1")
        *b = true;
      else if (*value == "false" || *value == "0")
        *b = false;
      else
        return absl::StrCat("'", *value, "' is not true or false");
      return "";
    }
    std::string operator()(std::string* s) const {
      if (!value) return "needs a value (--flag=VALUE)";
      *s = std::string(*value);
      return "";
    }
    std::string operator()(std::vector<std::string>* v) const {
      if (!value) return "needs a value (--flag=VALUE)";
      v->emplace_back(*value);
      return "";
    }
    std::string operator()(int64_t* i) const {
      if (!value || !absl::SimpleAtoi(*value, i)) {
        return absl::StrCat("'", value.value_or(""), "' is not an integer");
      }
      return "";
    }
    std::string operator()(std::optional<int64_t>* i) const {
      int64_t v;
      if (!value || !absl::SimpleAtoi(*value, &v)) {
        return absl::StrCat("'", value.value_or(""), "' is not an integer");
      }
      *i = v;
      return "";
    }
    std::string operator()(double* d) const {
      if (!value || !absl::SimpleAtod(*value, d)) {
        return absl::StrCat("'", value.value_or(""), "' is not a number");
      }
      return "";
    }
  };
  return std::visit(Visitor{value}, flag.target);
}

}  // namespace

bool ParseFlags(absl::string_view command, const std::vector<std::string>& args,
                const std::vector<Flag>& flags, std::vector<std::string>* positional) {
  for (const std::string& arg : args) {
    absl::string_view a = arg;
    if (!absl::ConsumePrefix(&a, "--")) {
      positional->push_back(arg);
      continue;
    }
    const size_t eq = a.find('=');
    const absl::string_view name = a.substr(0, eq);
    std::optional<absl::string_view> value;
    if (eq != absl::string_view::npos) value = a.substr(eq + 1);
    const Flag* flag = nullptr;
    for (const Flag& f : flags) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) {
      UsageError(command, absl::StrCat("unknown flag '--", name, "'"));
      return false;
    }
    if (std::string error = Assign(*flag, value); !error.empty()) {
      UsageError(command, absl::StrCat("--", name, ": ", error));
      return false;
    }
  }
  return true;
}

int UsageError(absl::string_view command, absl::string_view message) {
  std::fprintf(stderr, "inferctl %s: %s\n", std::string(command).c_str(),
               std::string(message).c_str());
  return 2;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "inferctl: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

std::optional<int> ParseDevice(absl::string_view text) {
  if (text == "host") return -1;
  int v;
  if (!absl::SimpleAtoi(text, &v) || v < 0) return std::nullopt;
  return v;
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (1u << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (1ull << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

std::string FormatTimeMs(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return absl::FormatTime("%H:%M:%E3S", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

}  // namespace inferd::inferctl
