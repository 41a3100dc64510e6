// Text forms of inferd.v1 messages for command-line output: short enum
// names ("HIGH" for PRIORITY_HIGH), enum parsing from those names, and
// JSON with the proto field names.
#ifndef INFERD_CLIENTS_CPP_PROTO_TEXT_H_
#define INFERD_CLIENTS_CPP_PROTO_TEXT_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace inferd {

// "PRIORITY_HIGH" -> "HIGH" (the enum type's UPPER_SNAKE name is the
// prefix); the number as text when `value` is not a known value.
std::string ShortEnumName(const google::protobuf::EnumDescriptor* type, int value);

// Parses a short or full value name, in any case ("high", "PRIORITY_HIGH").
std::optional<int> ParseEnumName(const google::protobuf::EnumDescriptor* type,
                                 absl::string_view name);

// The short names of every value but the UNSPECIFIED one, joined with "|".
std::string EnumChoices(const google::protobuf::EnumDescriptor* type);

// JSON with proto field names, every field printed, optionally indented.
std::string MessageToJson(const google::protobuf::Message& message, bool indent = true);

}  // namespace inferd

#endif  // INFERD_CLIENTS_CPP_PROTO_TEXT_H_
