#include "core/util/echo.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace inferd {

std::string Echo(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return absl::StrCat("'", absl::CHexEscape(value), "'");
  return absl::StrCat("'", absl::CHexEscape(value.substr(0, max_bytes)), "...' (", value.size(),
                      " bytes)");
}

}  // namespace inferd
