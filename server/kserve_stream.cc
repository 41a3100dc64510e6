#include "server/kserve_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/infer_call.h"

namespace inferd {

// One request read from a stream: decodes it, submits it, and turns its
// outputs (or error) into the stream's responses. Owns the request message
// (inputs point into it) until it completes; deletes itself then.
class StreamCall final : public FillingResponder {
 public:
  using Response = inference::ModelStreamInferResponse;

  StreamCall(StreamInferReactor* stream, std::unique_ptr<inference::ModelInferRequest> wire,
             const StreamInferContext& context)
      : FillingResponder(&filler_),
        stream_(stream),
        wire_(std::move(wire)),
        context_(context),
        response_(NewResponse()),
        filler_(response_->mutable_infer_response(), &decoded_) {}

  void Start() {
    InferRequest request;
    absl::Status st = DecodeInferRequest(*wire_, *context_.models, *context_.limits, context_.shm,
                                         &request, &decoded_);
    if (!st.ok()) {
      if (request.model != nullptr) {
        request.model->statistics().RecordFailure(absl::ZeroDuration(), absl::Now());
      }
      Complete(std::move(st));
      return;
    }
    model_ = request.model;
    response_->mutable_infer_response()->set_model_version(model_->signature().version);
    context_.submitter->Submit(std::move(request), this);
  }

  // inferd::InferResponder
  bool IsCancelled() const override { return stream_->cancelled(); }

  absl::Status SendResponse(absl::Span<const HostTensor> outputs) override {
    if (model_ == nullptr || !model_->signature().decoupled) {
      return InferResponder::SendResponse(outputs);
    }
    std::unique_ptr<Response> r = NewResponse();
    r->mutable_infer_response()->set_model_version(model_->signature().version);
    ResponseFiller filler(r->mutable_infer_response(), &decoded_);
    if (absl::Status st = filler.FillFromHost(model_->signature(), outputs); !st.ok()) return st;
    if (decoded_.enable_empty_final_response) SetFinal(r.get(), false);
    return stream_->DeliverWhenRoom(std::move(r));
  }

  void Complete(absl::Status status) override {
    std::unique_ptr<Response> out;
    const bool decoupled = model_ != nullptr && model_->signature().decoupled;
    if (model_ != nullptr && !decoupled) status = filler_.Finish(model_->signature(), status);
    if (!status.ok()) {
      out = std::move(response_);
      out->mutable_infer_response()->clear_outputs();
      out->mutable_infer_response()->clear_raw_output_contents();
      out->set_error_message(std::string(status.message()));
    } else if (!decoupled) {
      out = std::move(response_);
      if (decoded_.enable_empty_final_response) SetFinal(out.get(), true);
    } else if (decoded_.enable_empty_final_response) {
      // A decoupled request ends with an empty response that says so.
      out = std::move(response_);
      SetFinal(out.get(), true);
    }
    StreamInferReactor* stream = stream_;
    delete this;
    stream->Deliver(std::move(out), /*last=*/true);
  }

 private:
  std::unique_ptr<Response> NewResponse() const {
    auto r = std::make_unique<Response>();
    r->mutable_infer_response()->set_model_name(wire_->model_name());
    r->mutable_infer_response()->set_id(wire_->id());
    return r;
  }
  static void SetFinal(Response* r, bool final) {
    (*r->mutable_infer_response()->mutable_parameters())["triton_final_response"].set_bool_param(
        final);
  }

  StreamInferReactor* const stream_;
  const std::unique_ptr<inference::ModelInferRequest> wire_;
  const StreamInferContext& context_;
  std::shared_ptr<const Model> model_;
  DecodedCall decoded_;
  std::unique_ptr<Response> response_;
  ResponseFiller filler_;
};

StreamInferReactor::StreamInferReactor(const StreamInferContext& context)
    : context_(context), call_(context.metrics) {
  inference::ModelInferRequest* first = nullptr;
  {
    absl::MutexLock lock(&mu_);
    reading_ = std::make_unique<inference::ModelInferRequest>();
    read_outstanding_ = true;
    first = reading_.get();
  }
  StartRead(first);
}

void StreamInferReactor::OnReadDone(bool ok) {
  std::unique_ptr<inference::ModelInferRequest> got;
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    read_outstanding_ = false;
    if (ok && !cancelled()) {
      got = std::move(reading_);
      ++running_;  // holds the call open until the request delivers
    } else {
      reads_done_ = true;
    }
    actions = NextLocked();
  }
  // The next read starts before this request runs, so requests of one
  // stream overlap on gRPC's threads.
  Apply(actions);
  // Last: the request may complete inside, and the call then end.
  if (got != nullptr) Submit(std::move(got));
}

void StreamInferReactor::Submit(std::unique_ptr<inference::ModelInferRequest> wire) {
  auto* call = new StreamCall(this, std::move(wire), context_);
  call->Start();
}

void StreamInferReactor::OnWriteDone(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    writing_ = false;
    if (!ok) {
      // The stream broke: nothing more can be written.
      cancelled_.store(true, std::memory_order_release);
      queue_.clear();
    }
    actions = NextLocked();
  }
  Apply(actions);
}

void StreamInferReactor::OnCancel() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    cancelled_.store(true, std::memory_order_release);
    // Unwritten responses go; the one being written stays until it is done.
    while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
    actions = NextLocked();
  }
  Apply(actions);
}

void StreamInferReactor::OnDone() { delete this; }

void StreamInferReactor::Deliver(std::unique_ptr<Response> response, bool last) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (last) --running_;
    if (response != nullptr && !cancelled()) queue_.push_back(std::move(response));
    actions = NextLocked();
  }
  Apply(actions);
}

absl::Status StreamInferReactor::DeliverWhenRoom(std::unique_ptr<Response> response) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return cancelled() || static_cast<int>(queue_.size()) < context_.max_held;
    };
    mu_.Await(absl::Condition(&room));
    if (cancelled()) return absl::CancelledError("the stream was cancelled");
    queue_.push_back(std::move(response));
    actions = NextLocked();
  }
  Apply(actions);
  return absl::OkStatus();
}

StreamInferReactor::Actions StreamInferReactor::NextLocked() {
  Actions a;
  if (finished_) return a;
  const bool stopping = cancelled();
  const int held = running_ + static_cast<int>(queue_.size());
  if (!read_outstanding_ && !reads_done_ && !stopping && held < context_.max_held) {
    if (reading_ == nullptr) reading_ = std::make_unique<inference::ModelInferRequest>();
    read_outstanding_ = true;
    a.read = reading_.get();
  }
  if (!writing_ && !queue_.empty() && !stopping) {
    writing_ = true;
    a.write = queue_.front().get();
    a.more = queue_.size() > 1;
  }
  if ((reads_done_ || stopping) && !read_outstanding_ && running_ == 0 && !writing_ &&
      (queue_.empty() || stopping)) {
    finished_ = true;
    a.finish = true;
  }
  return a;
}

void StreamInferReactor::Apply(const Actions& actions) {
  if (actions.read != nullptr) StartRead(actions.read);
  if (actions.write != nullptr) {
    // With responses waiting behind it, gRPC may hold this one to send
    // them together; the last one of a run goes out at once.
    grpc::WriteOptions options;
    if (actions.more) options.set_buffer_hint();
    StartWrite(actions.write, options);
  }
  if (actions.finish) {
    call_.Finish(this,
                 cancelled() ? absl::CancelledError("the stream was cancelled") : absl::OkStatus());
  }
}

}  // namespace inferd
