#include "server/call_tracker.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/util/strict_json.h"
#include "grpc/grpc.h"
#include "grpc/support/alloc.h"

namespace inferd {

using grpc::experimental::InterceptionHookPoints;

// The interceptor of one call; gRPC creates it when the call reaches the
// daemon and destroys it when the call is over. Used by one call at a time.
class TrackedCall final : public grpc::experimental::Interceptor {
 public:
  TrackedCall(CallTracker* tracker, const char* method) : tracker_(tracker), method_(method) {
    tracker_->Begin();
  }
  ~TrackedCall() override { tracker_->End(); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsed_ = true;
    }
    if (unparsed_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status sent = methods->GetSendStatus();
      if (sent.error_code() == grpc::StatusCode::UNIMPLEMENTED && sent.error_message().empty()) {
        methods->ModifySendStatus(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, UnparsedRequestMessage(method_)));
      }
    }
    methods->Proceed();
  }

 private:
  CallTracker* const tracker_;
  const char* const method_;
  bool unparsed_ = false;
};

std::string UnparsedRequestMessage(const char* method) {
  return absl::StrCat("request could not be parsed as the request message of ",
                      method == nullptr ? "this method" : method);
}

grpc::experimental::Interceptor* CallTracker::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (info->method() != nullptr && std::strcmp(info->method(), kModelInferMethod) == 0) {
    return nullptr;  // counted by its queue (InferQueues)
  }
  return new TrackedCall(this, info->method());
}

void CallTracker::Begin() {
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  last_start_ns_.store(absl::ToUnixNanos(clock_->Now()), std::memory_order_release);
}

void CallTracker::End() {
  if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      waiting_.load(std::memory_order_acquire)) {
    absl::MutexLock lock(&mu_);
    ended_.SignalAll();
  }
}

bool CallTracker::IdleLocked(absl::Time now, absl::Duration quiet) const {
  return in_flight() == 0 &&
         now - absl::FromUnixNanos(last_start_ns_.load(std::memory_order_acquire)) >= quiet;
}

bool CallTracker::Drain(absl::Duration quiet, absl::Time deadline) {
  waiting_.store(true, std::memory_order_release);
  absl::MutexLock lock(&mu_);
  while (true) {
    const absl::Time now = clock_->Now();
    if (IdleLocked(now, quiet)) return true;
    if (now >= deadline) return false;
    const absl::Time quiet_at =
        absl::FromUnixNanos(last_start_ns_.load(std::memory_order_acquire)) + quiet;
    // End signals when the count drops to 0; a call that starts meanwhile
    // is seen on the next pass.
    ended_.WaitWithDeadline(&mu_, in_flight() > 0 ? deadline : std::min(quiet_at, deadline));
  }
}

namespace {

// channelz renders JSON (the channelz proto's mapping: int64 values as
// strings, zero values left out). Frees `raw`.
std::optional<JsonDocument> ParseChannelz(char* raw) {
  if (raw == nullptr) return std::nullopt;
  const std::string text(raw);
  gpr_free(raw);
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(text);
  if (!doc.ok()) return std::nullopt;
  return *std::move(doc);
}

// The int64 at `path` under `node` (0 when absent, as channelz leaves out
// zeros; nullopt when present but not an integer).
std::optional<int64_t> Int64At(const JsonDocument& doc, JsonDocument::NodeId node,
                               std::initializer_list<absl::string_view> path) {
  for (absl::string_view key : path) {
    std::optional<JsonDocument::NodeId> next = doc.Find(node, key);
    if (!next) return 0;
    node = *next;
  }
  int64_t v = 0;
  if (!absl::SimpleAtoi(doc.node(node).text, &v)) return std::nullopt;
  return v;
}

std::vector<int64_t> ServerIds() {
  std::vector<int64_t> ids;
  std::optional<JsonDocument> doc = ParseChannelz(grpc_channelz_get_servers(0));
  if (!doc) return ids;
  std::optional<JsonDocument::NodeId> servers = doc->Find(doc->root(), "server");
  if (!servers) return ids;
  for (JsonDocument::NodeId server : doc->node(*servers).items) {
    std::optional<int64_t> id = Int64At(*doc, server, {"ref", "serverId"});
    if (id && *id > 0) ids.push_back(*id);
  }
  return ids;
}

}  // namespace

TransportCalls::TransportCalls() : before_(ServerIds()) {}

void TransportCalls::Identify() {
  std::vector<int64_t> added;
  for (int64_t id : ServerIds()) {
    if (std::find(before_.begin(), before_.end(), id) == before_.end()) added.push_back(id);
  }
  id_ = added.size() == 1 ? added[0] : -1;  // none, or not one: unknown
}

std::optional<int64_t> TransportCalls::InFlight() const {
  if (id_ < 0) return std::nullopt;
  std::optional<JsonDocument> doc = ParseChannelz(grpc_channelz_get_server(id_));
  if (!doc) return std::nullopt;
  std::optional<JsonDocument::NodeId> server = doc->Find(doc->root(), "server");
  if (!server) return std::nullopt;
  std::optional<int64_t> started = Int64At(*doc, *server, {"data", "callsStarted"});
  std::optional<int64_t> succeeded = Int64At(*doc, *server, {"data", "callsSucceeded"});
  std::optional<int64_t> failed = Int64At(*doc, *server, {"data", "callsFailed"});
  if (!started || !succeeded || !failed) return std::nullopt;
  return *started - *succeeded - *failed;
}

}  // namespace inferd
