// InferQueues: ModelInfer on gRPC's completion-queue API. The other RPCs
// use the callback API; ModelInfer, the one hot path, is served by a few
// threads of the daemon's own, each looping on its completion queue: a
// call arrives on that thread as bytes, is parsed (a request that does not
// parse is INVALID_ARGUMENT naming the method), decoded and submitted
// there, and its
// response is sent from whichever thread completes the execution (one
// queue operation, no reactor and no callback executor in between).
//
// The calls count themselves in the daemon's CallTracker (for the drain at
// shutdown) from arrival until their response has gone; the tracker's
// interceptor leaves ModelInfer alone (kModelInferMethod).
//
// A finished batch hands each member's delivery (its rows, its response
// filled and sent) to the member's call, which runs it on its own queue's
// thread (InferResponder::RunOnOwnThread, an alarm on that queue); Stop
// waits for those before it shuts the queues down.
//
// Order: construct with the builder (adds the queues), BuildAndStart,
// Start(); at shutdown: grpc::Server::Shutdown, then the scheduler's
// shutdown (every call submitted gets its answer), then Stop().
#ifndef INFERD_SERVER_INFER_QUEUES_H_
#define INFERD_SERVER_INFER_QUEUES_H_

#include <memory>
#include <thread>
#include <vector>

#include "core/util/in_flight.h"
#include "grpcpp/grpcpp.h"
#include "server/call_tracker.h"
#include "server/kserve_service.h"

namespace inferd {

class InferQueues {
 public:
  // Adds `threads` completion queues to `builder` for `service`'s
  // ModelInfer (borrowed; it must outlive this). `threads` >= 1. `calls`
  // (borrowed, may be null) counts the calls in flight.
  InferQueues(grpc::ServerBuilder& builder, KServeService* service, int threads,
              CallTracker* calls = nullptr);
  ~InferQueues();  // Stop()
  InferQueues(const InferQueues&) = delete;
  InferQueues& operator=(const InferQueues&) = delete;

  // After BuildAndStart: asks for the first calls and starts the threads.
  void Start();
  // After the server's shutdown and once no execution will complete any
  // more: waits for the work handed to the queue threads, shuts the
  // queues down, drains them and joins the threads.
  void Stop();

 private:
  void Run(grpc::ServerCompletionQueue* cq);

  KServeService* const service_;
  CallTracker* const calls_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  // Work handed to a queue thread whose alarm has not come back yet (work
  // started after its queue's shutdown could not send).
  InFlight hand_offs_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace inferd

#endif  // INFERD_SERVER_INFER_QUEUES_H_
