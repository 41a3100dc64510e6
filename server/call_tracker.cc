#include "server/call_tracker.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

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

}  // namespace inferd
