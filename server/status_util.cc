#include "server/status_util.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace inferd {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  absl::string_view message = status.message();
  std::string text;
  if (message.size() > kMaxStatusMessageBytes) {
    // Sites echo input through Echo(); this is the backstop for any that
    // does not, so a reply never nears a client's metadata limit.
    text = absl::StrCat(message.substr(0, kMaxStatusMessageBytes), "... (", message.size(),
                        " bytes)");
  } else {
    text = std::string(message);
  }
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::move(text));
}

}  // namespace inferd
