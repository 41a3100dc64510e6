#include "server/infer_queues.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace inferd {
namespace {

// One ModelInfer call on a completion queue. Its tag comes back twice:
// when a call arrives (then it asks for the next one and handles this
// one) and when its response has been sent (then it is deleted). A tag
// that comes back not ok (the queue shuts down, or the client went away
// before the response was sent) also ends it.
class QueuedInferCall final : public ModelInferCall {
 public:
  QueuedInferCall(KServeService* service, grpc::ServerCompletionQueue* cq)
      : ModelInferCall(&response_, service->infer_metrics()),
        service_(service),
        cq_(cq),
        writer_(&ctx_) {
    service_->RequestModelInfer(&ctx_, &request_, &writer_, cq_, cq_, this);
  }

  // The queue returned this call's tag.
  void Proceed(bool ok) {
    if (!arrived_) {
      arrived_ = true;
      if (!ok) {  // the queue is shutting down: no call arrived
        delete this;
        return;
      }
      new QueuedInferCall(service_, cq_);  // the next call on this queue
      // May complete (and Send) before it returns: nothing after it may
      // touch `this`.
      service_->Infer(request_, &response_, this);
      return;
    }
    delete this;  // the response went out (or the call was cancelled)
  }

 private:
  void Send(const grpc::Status& status) override {
    if (status.ok()) {
      writer_.Finish(response_, status, this);
    } else {
      writer_.FinishWithError(status, this);
    }
  }

  KServeService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
  grpc::ServerAsyncResponseWriter<inference::ModelInferResponse> writer_;
  bool arrived_ = false;
};

}  // namespace

InferQueues::InferQueues(grpc::ServerBuilder& builder, KServeService* service, int threads)
    : service_(service) {
  for (int i = 0; i < threads; ++i) queues_.push_back(builder.AddCompletionQueue());
}

InferQueues::~InferQueues() { Stop(); }

void InferQueues::Start() {
  if (started_) return;
  started_ = true;
  for (auto& cq : queues_) {
    // Several calls asked for per queue, so that a burst of arrivals does
    // not wait for each handler to ask for the next.
    for (int i = 0; i < 4; ++i) new QueuedInferCall(service_, cq.get());
    threads_.emplace_back([this, q = cq.get()] { Run(q); });
    pthread_setname_np(threads_.back().native_handle(), "infer-cq");
  }
}

void InferQueues::Stop() {
  if (stopped_) return;
  stopped_ = true;
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
