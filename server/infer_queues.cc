#include "server/infer_queues.h"

#include <pthread.h>

#include <optional>
#include <utility>

#include "google/protobuf/arena.h"
#include "grpcpp/alarm.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace inferd {
namespace {

// The messages of one call on a protobuf arena whose first block lies in
// the call object: a small request's message, its strings, repeated fields
// and the response take no heap allocation of their own (tensor bytes
// longer than a short string still do, once each). A base class, so that
// it exists before ModelInferCall, which is given the response.
class InferCallMessages {
 protected:
  InferCallMessages()
      : arena_(Options(block_)),
        request_message_(
            google::protobuf::Arena::CreateMessage<inference::ModelInferRequest>(&arena_)),
        response_message_(
            google::protobuf::Arena::CreateMessage<inference::ModelInferResponse>(&arena_)) {}

  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions o;
    o.initial_block = block;
    o.initial_block_size = kBlockBytes;
    return o;
  }

  static constexpr size_t kBlockBytes = 4096;
  alignas(16) char block_[kBlockBytes];
  google::protobuf::Arena arena_;
  inference::ModelInferRequest* const request_message_;
  inference::ModelInferResponse* const response_message_;
};

// One ModelInfer call on a completion queue. Its tag comes back twice:
// when a call arrives (then it asks for the next one and handles this
// one) and when its response has been sent (then it is deleted). A tag
// that comes back not ok (the queue shuts down, or the client went away
// before the response was sent) also ends it.
class QueuedInferCall final : private InferCallMessages, public ModelInferCall {
 public:
  QueuedInferCall(KServeService* service, CallTracker* calls, InFlight* hand_offs,
                  grpc::ServerCompletionQueue* cq)
      : ModelInferCall(response_message_, service->infer_metrics()),
        service_(service),
        calls_(calls),
        hand_offs_(hand_offs),
        cq_(cq),
        writer_(&ctx_) {
    service_->RequestModelInfer(&ctx_, &wire_, &writer_, cq_, cq_, this);
  }

  // The queue returned this call's tag.
  void Proceed(bool ok) {
    if (!arrived_) {
      if (!ok) {  // the queue is shutting down: no call arrived
        delete this;
        return;
      }
      arrived_ = true;
      if (calls_ != nullptr) calls_->Begin();
      new QueuedInferCall(service_, calls_, hand_offs_, cq_);  // the next call on this queue
      using Traits = grpc::SerializationTraits<inference::ModelInferRequest>;
      if (!Traits::Deserialize(&wire_, request_message_).ok()) {
        Complete(absl::InvalidArgumentError(UnparsedRequestMessage(kModelInferMethod)));
        return;
      }
      // May complete (and Send) before it returns: nothing after it may
      // touch `this`.
      service_->Infer(*request_message_, response_message_, this);
      return;
    }
    if (work_ != nullptr) {  // the alarm RunOnOwnThread set: run it here
      ResponderWork* work = std::exchange(work_, nullptr);
      InFlight* hand_offs = hand_offs_;
      work->Run();  // completes this call (its send comes back as a tag)
      hand_offs->End();
      return;
    }
    delete this;  // the response went out (or the call was cancelled)
  }

  ~QueuedInferCall() override {
    if (arrived_ && calls_ != nullptr) calls_->End();
  }

 private:
  // The work comes back on this call's queue thread at once, as the
  // alarm's tag.
  bool RunOnOwnThread(ResponderWork* work) override {
    work_ = work;
    hand_offs_->Begin();
    alarm_.emplace();
    alarm_->Set(cq_, gpr_inf_past(GPR_CLOCK_MONOTONIC), this);
    return true;
  }

  void Send(const grpc::Status& status) override {
    if (!status.ok()) {
      writer_.FinishWithError(status, this);
      return;
    }
    bool own_buffer = false;
    grpc::ByteBuffer out;
    grpc::Status serialized = grpc::SerializationTraits<inference::ModelInferResponse>::Serialize(
        *response_message_, &out, &own_buffer);
    if (!serialized.ok()) {
      writer_.FinishWithError(
          grpc::Status(grpc::StatusCode::INTERNAL, "the response could not be serialized"), this);
      return;
    }
    writer_.Finish(out, status, this);
  }

  KServeService* const service_;
  CallTracker* const calls_;
  InFlight* const hand_offs_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer wire_;  // the request as it arrived
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> writer_;
  bool arrived_ = false;  // a call arrived (and counts in calls_ until deleted)
  // Work handed to this call's queue thread (RunOnOwnThread): the alarm's
  // tag comes back with work_ set.
  ResponderWork* work_ = nullptr;
  std::optional<grpc::Alarm> alarm_;
};

}  // namespace

InferQueues::InferQueues(grpc::ServerBuilder& builder, KServeService* service, int threads,
                         CallTracker* calls)
    : service_(service), calls_(calls) {
  for (int i = 0; i < threads; ++i) queues_.push_back(builder.AddCompletionQueue());
}

InferQueues::~InferQueues() { Stop(); }

void InferQueues::Start() {
  if (started_) return;
  started_ = true;
  for (auto& cq : queues_) {
    // Several calls asked for per queue, so that a burst of arrivals does
    // not wait for each handler to ask for the next.
    for (int i = 0; i < 4; ++i) new QueuedInferCall(service_, calls_, &hand_offs_, cq.get());
    threads_.emplace_back([this, q = cq.get()] { Run(q); });
    pthread_setname_np(threads_.back().native_handle(), "infer-cq");
  }
}

void InferQueues::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (started_) hand_offs_.AwaitNone();  // their sends must start before the shutdown
  for (auto& cq : queues_) cq->Shutdown();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  if (!started_) {
    // Never started: nothing was asked for, but a shut-down queue must be
    // drained before it is destroyed.
    for (auto& cq : queues_) {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) {
      }
    }
  }
}

void InferQueues::Run(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<QueuedInferCall*>(tag)->Proceed(ok);
}

}  // namespace inferd
