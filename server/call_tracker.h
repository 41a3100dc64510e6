// CallTracker: a gRPC server interceptor on every call but ModelInfer's
// (which count themselves through Begin/End). It counts the calls in
// flight, from the moment gRPC hands one to the daemon until it ends, so
// that shutdown can drain them (Daemon::Shutdown), and it answers a request
// gRPC could not parse with INVALID_ARGUMENT "request could not be parsed"
// instead of the UNIMPLEMENTED with no message that gRPC sends (for the
// unary and server-streaming methods, whose request gRPC parses before the
// handler runs).
#ifndef INFERD_SERVER_CALL_TRACKER_H_
#define INFERD_SERVER_CALL_TRACKER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/util/clock.h"
#include "grpcpp/support/server_interceptor.h"

namespace inferd {

// The one method the interceptor leaves alone: ModelInfer's calls count
// themselves (InferQueues), which spares the hot path an interceptor
// object and its hooks per call, and parse their own bytes.
inline constexpr char kModelInferMethod[] = "/inference.GRPCInferenceService/ModelInfer";

// The INVALID_ARGUMENT message for a request that does not parse as the
// request message of `method` (null: a method gRPC did not name).
std::string UnparsedRequestMessage(const char* method);

// Thread-safe. Counting costs a call two atomic updates; no lock unless a
// drain is waiting. The clock is borrowed.
class CallTracker final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallTracker(Clock* clock) : clock_(clock) {}

  // grpc::experimental::ServerInterceptorFactoryInterface
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  int64_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }

  // Blocks until no call is in flight and none has started for `quiet`, or
  // until `deadline` (real time); true in the first case. A call whose
  // request is still arriving is invisible until it has arrived; `quiet`
  // gives such calls time to arrive.
  bool Drain(absl::Duration quiet, absl::Time deadline);

  // A call arrived / ended, for calls that count themselves.
  void Begin();
  void End();

 private:
  bool IdleLocked(absl::Time now, absl::Duration quiet) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> last_start_ns_{0};
  std::atomic<bool> waiting_{false};
  absl::Mutex mu_;
  absl::CondVar ended_;  // signalled (under mu_) when in_flight_ drops to 0
};

// gRPC's own count of one server's calls (its channelz counters), which
// sees a call from its first bytes: unlike CallTracker, also a call whose
// request is still arriving. Construct it just before the server's
// BuildAndStart and call Identify just after: the server is the one that
// appeared in between. Thread-compatible.
class TransportCalls {
 public:
  TransportCalls();
  void Identify();
  // Calls started and not yet finished; nullopt when the server was not
  // identified (channelz disabled) or channelz does not answer.
  std::optional<int64_t> InFlight() const;

 private:
  std::vector<int64_t> before_;
  int64_t id_ = -1;
};

}  // namespace inferd

#endif  // INFERD_SERVER_CALL_TRACKER_H_
