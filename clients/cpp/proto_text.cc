#include "clients/cpp/proto_text.h"

#include <cctype>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"

namespace inferd {
namespace {

// "TaskState" -> "TASK_STATE_".
std::string EnumPrefix(const google::protobuf::EnumDescriptor* type) {
  std::string out;
  const std::string& name = type->name();
  for (size_t i = 0; i < name.size(); ++i) {
    if (i > 0 && std::isupper(static_cast<unsigned char>(name[i]))) out += '_';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(name[i])));
  }
  return out + "_";
}

}  // namespace

std::string ShortEnumName(const google::protobuf::EnumDescriptor* type, int value) {
  const google::protobuf::EnumValueDescriptor* v = type->FindValueByNumber(value);
  if (v == nullptr) return absl::StrCat(value);
  absl::string_view name = v->name();
  absl::ConsumePrefix(&name, EnumPrefix(type));
  return std::string(name);
}

std::optional<int> ParseEnumName(const google::protobuf::EnumDescriptor* type,
                                 absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  for (const std::string& candidate : {upper, EnumPrefix(type) + upper}) {
    if (const auto* v = type->FindValueByName(candidate); v != nullptr) return v->number();
  }
  return std::nullopt;
}

std::string EnumChoices(const google::protobuf::EnumDescriptor* type) {
  std::vector<std::string> names;
  for (int i = 0; i < type->value_count(); ++i) {
    std::string n = ShortEnumName(type, type->value(i)->number());
    if (n != "UNSPECIFIED") names.push_back(std::move(n));
  }
  return absl::StrJoin(names, "|");
}

std::string MessageToJson(const google::protobuf::Message& message, bool indent) {
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = indent;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, o);
  return out;
}

}  // namespace inferd
