// StreamInferReactor: one ModelStreamInfer call (bidirectional). Requests
// are read and submitted as they arrive, many in flight; each response is
// written as its request completes (completion order) and carries the
// request's id. A request that fails answers with error_message on the
// stream, which stays open. Decoupled models send 0..N responses per
// request; with the request parameter triton_enable_empty_final_response
// every response carries triton_final_response and the last one is true.
//
// Flow control: requests running plus responses not yet written are capped
// (server.max_stream_held_responses); at the cap the reactor stops reading
// until writes drain, and a decoupled model's sends wait, so a client that
// never reads holds at most that many responses in the daemon.
// Cancellation (the client goes away or cancels): queued requests are
// dropped without running, decoupled models are told to stop, and the call
// finishes once every request has returned.
//
// Thread-safety: gRPC reactions and request completions run on any thread;
// state is guarded by mu_ and gRPC operations are started outside it.
#ifndef INFERD_SERVER_KSERVE_STREAM_H_
#define INFERD_SERVER_KSERVE_STREAM_H_

#include <atomic>
#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/config/config.h"
#include "core/infer/infer_request.h"
#include "core/models/model_registry.h"
#include "core/shm/shared_memory_registry.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/grpc_metrics.h"
#include "server/server_call.h"

namespace inferd {

struct StreamInferContext {
  const ModelRegistry* models = nullptr;
  InferSubmitter* submitter = nullptr;
  const LimitsConfig* limits = nullptr;
  const SharedMemoryRegistry* shm = nullptr;  // may be null
  int max_held = 128;
  MethodMetrics* metrics = nullptr;
};

class StreamCall;

class StreamInferReactor final
    : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                     inference::ModelStreamInferResponse> {
 public:
  using Response = inference::ModelStreamInferResponse;

  // Starts reading. Deletes itself when the call is done.
  explicit StreamInferReactor(const StreamInferContext& context);

  // grpc::ServerBidiReactor
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // For StreamCall: queues `response` (null: none) for writing; `last`
  // ends its request. Never blocks.
  void Deliver(std::unique_ptr<Response> response, bool last);
  // For StreamCall (decoupled models): waits while the stream holds its
  // cap of unwritten responses, then queues `response`. CANCELLED when the
  // client has gone.
  absl::Status DeliverWhenRoom(std::unique_ptr<Response> response);
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  // The gRPC operations a state change calls for, started outside mu_.
  struct Actions {
    inference::ModelInferRequest* read = nullptr;
    Response* write = nullptr;
    bool more = false;  // more responses wait behind `write`
    bool finish = false;
  };
  void Apply(const Actions& actions);
  // Decides the next read, write and finish.
  Actions NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Submit(std::unique_ptr<inference::ModelInferRequest> wire);

  const StreamInferContext context_;
  ServerCall call_;  // finished by Apply
  std::atomic<bool> cancelled_{false};

  absl::Mutex mu_;
  std::unique_ptr<inference::ModelInferRequest> reading_ ABSL_GUARDED_BY(mu_);
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // requests not yet completed
  std::deque<std::unique_ptr<Response>> queue_ ABSL_GUARDED_BY(mu_);  // front: writing
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace inferd

#endif  // INFERD_SERVER_KSERVE_STREAM_H_
