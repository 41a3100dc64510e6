// ServerCall: the one way a gRPC adapter ends a call. It times the call
// from construction, and Finish does, exactly once, what every call ends
// with: converts the absl::Status (ToGrpcStatus, the one conversion),
// records the code and latency under the method (MethodMetrics), and hands
// the grpc::Status to the reactor. A second Finish does nothing.
//
// Unary handlers use UnaryCall (the default reactor); streaming reactors
// and reactors that finish later (WaitTask, WaitTransfer, ModelInfer)
// hold a ServerCall and call Finish(this, status).
#ifndef INFERD_SERVER_SERVER_CALL_H_
#define INFERD_SERVER_SERVER_CALL_H_

#include <atomic>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/util/clock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/status.h"
#include "server/grpc_metrics.h"

namespace inferd {

// Thread-safe: Finish may race from several threads (a completion and a
// cancellation); one wins. Borrows the metrics and the clock.
class ServerCall {
 public:
  explicit ServerCall(MethodMetrics* metrics, const Clock* clock = Clock::Real())
      : metrics_(metrics), clock_(clock), start_(clock->Now()) {}
  ServerCall(const ServerCall&) = delete;
  ServerCall& operator=(const ServerCall&) = delete;

  // The first call converts `status`, records it and returns what to send;
  // later calls return nullopt and record nothing.
  std::optional<grpc::Status> End(const absl::Status& status);

  // End, then `reactor->Finish(...)` when this was the first end. Returns
  // whether it was. Works for unary and streaming reactors alike.
  template <typename Reactor>
  bool Finish(Reactor* reactor, const absl::Status& status) {
    std::optional<grpc::Status> wire = End(status);
    if (!wire.has_value()) return false;
    reactor->Finish(*wire);
    return true;
  }

  bool finished() const { return finished_.load(std::memory_order_acquire); }
  absl::Time start() const { return start_; }

 private:
  MethodMetrics* const metrics_;
  const Clock* const clock_;
  const absl::Time start_;
  std::atomic<bool> finished_{false};
};

// A unary handler's call on the context's default reactor:
//
//   UnaryCall call(ctx, m_get_);
//   if (!id.ok()) return call.Finish(id.status());
//   ...
//   return call.Finish(absl::OkStatus());
//
// Not thread-safe (one handler's frame).
class UnaryCall {
 public:
  UnaryCall(grpc::CallbackServerContext* ctx, MethodMetrics* metrics,
            const Clock* clock = Clock::Real())
      : ctx_(ctx), call_(metrics, clock) {}

  // Finishes the call (once) and returns the reactor the handler returns.
  grpc::ServerUnaryReactor* Finish(const absl::Status& status);

  absl::Time start() const { return call_.start(); }

 private:
  grpc::CallbackServerContext* const ctx_;
  // DefaultReactor() re-initializes the reactor on every call: taken once.
  grpc::ServerUnaryReactor* reactor_ = nullptr;
  ServerCall call_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_SERVER_CALL_H_
