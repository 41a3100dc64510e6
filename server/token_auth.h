// Bearer-token authentication and the role each gRPC method needs.
//
// server.auth.tokens_file holds one token a line, `NAME ROLE TOKEN`, with
// ROLE `infer` (inference, metadata, statistics, tensors and tasks) or
// `admin` (also model load/unload, policy and settings changes, compaction,
// and freeing tensors another caller owns). Clients send
// `authorization: Bearer TOKEN`. Health checks and reflection need nothing.
// Errors name the method, the role it needs and the caller's name, never
// the token.
#ifndef INFERD_SERVER_TOKEN_AUTH_H_
#define INFERD_SERVER_TOKEN_AUTH_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/server_context.h"

namespace inferd {

enum class Role { kNone = 0, kInfer = 1, kAdmin = 2 };
const char* RoleName(Role role);

// What a fully qualified method ("/package.Service/Method") needs.
Role RequiredRole(absl::string_view method);

struct Caller {
  std::string name;
  Role role = Role::kNone;
};

// The tokens of tokens_file. Thread-safe; Reload swaps the whole table.
class TokenTable {
 public:
  static absl::StatusOr<std::unique_ptr<TokenTable>> Load(const std::string& path);
  // Re-reads the file; on error keeps the tokens it had.
  absl::Status Reload();
  size_t size() const;

  // The caller holding `authorization` ("Bearer TOKEN"), or nullopt.
  std::optional<Caller> Find(absl::string_view authorization) const;
  // The caller of a call (its authorization metadata), or nullopt.
  std::optional<Caller> FromContext(const grpc::ServerContextBase& context) const;

  // UNAUTHENTICATED / PERMISSION_DENIED for a call of `method` carrying
  // `authorization` (empty when absent); OK when allowed.
  // `caller`, when not null, receives the caller of an allowed call.
  absl::Status Check(absl::string_view method, absl::string_view authorization,
                     std::optional<Caller>* caller = nullptr) const;

 private:
  explicit TokenTable(std::string path) : path_(std::move(path)) {}
  using Map = absl::flat_hash_map<std::string, Caller>;  // SHA-256 of the token
  static absl::StatusOr<Map> Read(const std::string& path);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Map> tokens_ ABSL_GUARDED_BY(mu_);
};

// The caller TokenAuthProcessor let through for this call (kept in the
// call's auth context), or nullopt when server.auth is off or the method is
// open.
std::optional<Caller> CallerOf(const grpc::ServerContextBase& context);

// The owner a new tensor records for `caller`: `requested`, or the caller's
// name when `requested` is empty. PERMISSION_DENIED naming `method`, the
// field and the caller when `requested` names another owner and the caller
// is not admin. Without a caller (no auth) `requested` as is.
absl::StatusOr<std::string> OwnerFor(const std::optional<Caller>& caller,
                                     absl::string_view requested, absl::string_view method,
                                     absl::string_view field);

// OK when `caller` may act on a resource of `owner`: no auth, no owner, the
// caller's own, or role admin; else PERMISSION_DENIED naming `method`,
// `what`, the owner and the caller (never a token).
absl::Status CheckOwner(const std::optional<Caller>& caller, absl::string_view owner,
                        absl::string_view method, absl::string_view what);

// Runs TokenTable::Check on every call before it reaches a service, and
// records the caller it let through in the call's auth context.
class TokenAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenAuthProcessor(const TokenTable* tokens) : tokens_(tokens) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* response) override;

 private:
  const TokenTable* tokens_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_TOKEN_AUTH_H_
