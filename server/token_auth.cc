#include "server/token_auth.h"

#include <openssl/sha.h>

#include <array>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace inferd {
namespace {

constexpr absl::string_view kBearer = "Bearer ";
constexpr size_t kMaxTokensFileBytes = 1 << 20;
constexpr size_t kMinTokenLength = 16;
// Auth context properties of a call TokenAuthProcessor let through.
constexpr char kCallerProperty[] = "inferd.caller";
constexpr char kRoleProperty[] = "inferd.role";

// Methods anyone may call: health and reflection, the liveness probes.
constexpr absl::string_view kOpenPrefixes[] = {
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
};
constexpr absl::string_view kOpenMethods[] = {
    "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
};
// Methods that change what the daemon serves or how.
constexpr absl::string_view kAdminMethods[] = {
    "/inference.GRPCInferenceService/RepositoryModelLoad",
    "/inference.GRPCInferenceService/RepositoryModelUnload",
    "/inference.GRPCInferenceService/TraceSetting",
    "/inference.GRPCInferenceService/LogSettings",
    "/inferd.v1.Scaling/SetScalingPolicy",
    "/inferd.v1.Memory/Compact",
};

std::string Digest(absl::string_view token) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> out;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), out.data());
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNone: return "none";
    case Role::kInfer: return "infer";
    case Role::kAdmin: return "admin";
  }
  return "none";
}

Role RequiredRole(absl::string_view method) {
  for (absl::string_view p : kOpenPrefixes) {
    if (absl::StartsWith(method, p)) return Role::kNone;
  }
  for (absl::string_view m : kOpenMethods) {
    if (method == m) return Role::kNone;
  }
  for (absl::string_view m : kAdminMethods) {
    if (method == m) return Role::kAdmin;
  }
  return Role::kInfer;
}

absl::StatusOr<TokenTable::Map> TokenTable::Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("server.auth.tokens_file: cannot read '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  if (text.size() > kMaxTokensFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("server.auth.tokens_file: '", path,
                                                   "' is larger than ", kMaxTokensFileBytes,
                                                   " bytes"));
  }
  Map map;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("server.auth.tokens_file: '", path,
                                                     "' line ", line_number, ": ", why));
    };
    if (fields.size() != 3) return bad("expected NAME ROLE TOKEN");
    Caller caller{std::string(fields[0]), Role::kNone};
    if (fields[1] == "infer") {
      caller.role = Role::kInfer;
    } else if (fields[1] == "admin") {
      caller.role = Role::kAdmin;
    } else {
      return bad(absl::StrCat("role '", fields[1], "' is not infer or admin"));
    }
    if (fields[2].size() < kMinTokenLength) {
      return bad(absl::StrCat("the token of '", caller.name, "' is shorter than ",
                              kMinTokenLength, " characters"));
    }
    if (!map.emplace(Digest(fields[2]), caller).second) {
      return bad(absl::StrCat("the token of '", caller.name, "' appears twice"));
    }
  }
  if (map.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.auth.tokens_file: '", path, "' holds no token"));
  }
  return map;
}

absl::StatusOr<std::unique_ptr<TokenTable>> TokenTable::Load(const std::string& path) {
  std::unique_ptr<TokenTable> table(new TokenTable(path));
  if (absl::Status st = table->Reload(); !st.ok()) return st;
  return table;
}

absl::Status TokenTable::Reload() {
  absl::StatusOr<Map> map = Read(path_);
  if (!map.ok()) return map.status();
  auto shared = std::make_shared<const Map>(*std::move(map));
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(shared);
  return absl::OkStatus();
}

size_t TokenTable::size() const {
  absl::MutexLock lock(&mu_);
  return tokens_ == nullptr ? 0 : tokens_->size();
}

std::optional<Caller> TokenTable::Find(absl::string_view authorization) const {
  if (!absl::ConsumePrefix(&authorization, kBearer)) return std::nullopt;
  const std::string digest = Digest(absl::StripAsciiWhitespace(authorization));
  std::shared_ptr<const Map> tokens;
  {
    absl::MutexLock lock(&mu_);
    tokens = tokens_;
  }
  auto it = tokens->find(digest);
  if (it == tokens->end()) return std::nullopt;
  return it->second;
}

std::optional<Caller> TokenTable::FromContext(const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return Find(absl::string_view(it->second.data(), it->second.size()));
}

absl::Status TokenTable::Check(absl::string_view method, absl::string_view authorization,
                               std::optional<Caller>* caller_out) const {
  const Role needed = RequiredRole(method);
  if (needed == Role::kNone) return absl::OkStatus();
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(method, " needs a bearer token with role ", RoleName(needed),
                     " (metadata 'authorization: Bearer TOKEN'); none was sent"));
  }
  std::optional<Caller> caller = Find(authorization);
  if (!caller.has_value()) {
    return absl::UnauthenticatedError(absl::StrCat(
        method, " needs a bearer token with role ", RoleName(needed),
        "; the token sent is not in server.auth.tokens_file"));
  }
  if (static_cast<int>(caller->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat(method, " needs role ", RoleName(needed),
                                                    "; caller '", caller->name, "' has role ",
                                                    RoleName(caller->role)));
  }
  if (caller_out != nullptr) *caller_out = std::move(caller);
  return absl::OkStatus();
}

std::optional<Caller> CallerOf(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return std::nullopt;
  std::vector<grpc::string_ref> names = auth->FindPropertyValues(kCallerProperty);
  std::vector<grpc::string_ref> roles = auth->FindPropertyValues(kRoleProperty);
  if (names.empty() || roles.empty()) return std::nullopt;
  Caller caller{std::string(names.front().data(), names.front().size()), Role::kInfer};
  if (absl::string_view(roles.front().data(), roles.front().size()) == RoleName(Role::kAdmin)) {
    caller.role = Role::kAdmin;
  }
  return caller;
}

absl::StatusOr<std::string> OwnerFor(const std::optional<Caller>& caller,
                                     absl::string_view requested, absl::string_view method,
                                     absl::string_view field) {
  if (!caller.has_value()) return std::string(requested);
  if (requested.empty()) return caller->name;
  if (requested == caller->name || caller->role == Role::kAdmin) return std::string(requested);
  return absl::PermissionDeniedError(absl::StrCat(
      method, ": ", field, " names owner '", requested, "', not the caller '", caller->name,
      "'; only role admin may act for another owner (caller '", caller->name, "' has role ",
      RoleName(caller->role), ")"));
}

absl::Status CheckOwner(const std::optional<Caller>& caller, absl::string_view owner,
                        absl::string_view method, absl::string_view what) {
  if (!caller.has_value() || owner.empty() || owner == caller->name ||
      caller->role == Role::kAdmin) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      method, " of ", what, " owned by '", owner, "' needs role admin; caller '", caller->name,
      "' has role ", RoleName(caller->role)));
}

grpc::Status TokenAuthProcessor::Process(const InputMetadata& metadata,
                                         grpc::AuthContext* context, OutputMetadata*,
                                         OutputMetadata*) {
  absl::string_view method;
  absl::string_view authorization;
  for (const auto& [key, value] : metadata) {
    absl::string_view k(key.data(), key.size());
    if (k == ":path") method = absl::string_view(value.data(), value.size());
    if (k == "authorization") authorization = absl::string_view(value.data(), value.size());
  }
  std::optional<Caller> caller;
  absl::Status st = tokens_->Check(method, authorization, &caller);
  if (st.ok()) {
    if (caller.has_value() && context != nullptr) {
      context->AddProperty(kCallerProperty, caller->name);
      context->AddProperty(kRoleProperty, RoleName(caller->role));
    }
    return grpc::Status::OK;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

}  // namespace inferd
