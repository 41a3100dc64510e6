// Echo of client input in error messages. A message names the field and
// the value the client sent, but never the whole of an unbounded value: a
// name of megabytes must not come back as megabytes, nor overflow a
// client's metadata limit and break other calls on its connection.
#ifndef INFERD_CORE_UTIL_ECHO_H_
#define INFERD_CORE_UTIL_ECHO_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace inferd {

// Input longer than this is cut in error messages.
inline constexpr size_t kMaxEchoBytes = 96;

// Returns `value` quoted for an error message: 'value', with bytes that are
// not printable ASCII escaped, cut after `max_bytes` input bytes and then
// followed by "... (N bytes)". At most 4 * max_bytes + 32 characters.
std::string Echo(absl::string_view value, size_t max_bytes = kMaxEchoBytes);

}  // namespace inferd

#endif  // INFERD_CORE_UTIL_ECHO_H_
