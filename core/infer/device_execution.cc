#include "core/infer/device_execution.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/device/copy_joiner.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

constexpr uint64_t kAlign = kCopyJoinAlign;

uint64_t AlignUp(uint64_t v) { return CopyJoinAlignUp(v); }

// One request inside an execution: where its result goes and where its
// tensors lie on the device.
struct Slot {
  InferRequest* request = nullptr;
  InferResponder* responder = nullptr;
  absl::Status* status = nullptr;  // its own outcome (validation, launch)
  absl::InlinedVector<TensorDesc, 2> output_descs;
  absl::InlinedVector<DeviceTensor, 4> device_inputs;
  absl::InlinedVector<DeviceTensor, 2> device_outputs;
  absl::InlinedVector<void*, 2> direct_outputs;  // written in place on the device
  bool outputs_pinned = false;
  bool laid_out = false;  // validated: has its place in the buffer and staging block
  bool in_buffer = true;  // every tensor in the execution's buffer (none in place)
  bool live = false;      // laid out, and its model enqueued without error
};

// Everything one in-flight execution owns until its stream callback runs:
// one request (ExecuteOnDevice) or a group (ExecuteGroupOnDevice).
struct Execution {
  InferRequest owned_request;  // ExecuteOnDevice's request
  absl::Status owned_status;
  absl::InlinedVector<Slot, 1> slots;
  void* buffer = nullptr;
  // Pinned block that host inputs and outputs are staged through (null:
  // they are copied directly), and the outputs to copy out of it once the
  // stream has run: slot, to host, from staged, bytes.
  StagingBlock staging;
  struct StagedOutput {
    size_t slot;
    void* host;
    const void* staged;
    uint64_t bytes;
  };
  absl::InlinedVector<StagedOutput, 2> staged_outputs;
  // Stream times (Stream::MarkTime) at the start, after the input copies,
  // after the models and after the output copies.
  int64_t marks[4] = {0, 0, 0, 0};
  // How it ends: this responder's Complete (ExecuteOnDevice) or `done`.
  InferResponder* single = nullptr;
  absl::AnyInvocable<void(absl::Status) &&> done;
};

// Forwards a decoupled model's responses to the request's responder.
class DecoupledWriter final : public ResponseWriter {
 public:
  DecoupledWriter(InferRequest request, InferResponder* responder)
      : request_(std::move(request)), responder_(responder) {}

  absl::Status Send(absl::Span<const HostTensor> outputs) override {
    return responder_->SendResponse(outputs);
  }
  void Finish(absl::Status status) override {
    InferResponder* responder = responder_;
    delete this;
    responder->Complete(std::move(status));
  }

  const InferRequest& request() const { return request_; }

 private:
  InferRequest request_;  // keeps the model and the input bytes' owner alive
  InferResponder* const responder_;
};

// Runs a decoupled model: host inputs only, responses through the responder.
void ExecuteDecoupled(InferRequest request, InferResponder* responder) {
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Device* device = request.inputs[i].device;
    if (device != nullptr && device->info().kind != DeviceKind::kHost) {
      responder->Complete(absl::InvalidArgumentError(absl::StrCat(
          "inputs[", i, "] (", request.inputs[i].name, "): model '",
          request.model->signature().name,
          "' is decoupled and takes no GPU-resident inputs")));
      return;
    }
  }
  auto* writer = new DecoupledWriter(std::move(request), responder);
  absl::InlinedVector<HostTensor, 4> inputs;
  for (const InferInput& in : writer->request().inputs) {
    inputs.push_back(HostTensor{&in.desc, in.data});
  }
  const Model& model = *writer->request().model;
  model.ExecuteDecoupled(inputs, writer->request().params, writer);
}

// Host memory for a host-executed model's outputs, from the responder.
class ResponderOutputs final : public HostOutputs {
 public:
  ResponderOutputs(const ModelSignature& sig, InferResponder* responder)
      : sig_(sig), responder_(responder) {}
  void* Allocate(int index, const TensorDesc& desc) override {
    if (index < 0 || static_cast<size_t>(index) >= sig_.outputs.size()) return nullptr;
    return responder_->AllocateOutput(index, sig_.outputs[index], desc);
  }

 private:
  const ModelSignature& sig_;
  InferResponder* const responder_;
};

// Runs a host-executed model on this thread: host inputs only.
void ExecuteHost(const InferRequest& request, InferResponder* responder) {
  const Model& model = *request.model;
  absl::InlinedVector<HostTensor, 4> inputs;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const InferInput& in = request.inputs[i];
    if (in.device != nullptr && in.device->info().kind != DeviceKind::kHost) {
      responder->Complete(absl::InvalidArgumentError(absl::StrCat(
          "inputs[", i, "] (", in.name, "): model '", model.signature().name,
          "' computes on the host and takes no GPU-resident inputs")));
      return;
    }
    inputs.push_back(HostTensor{&in.desc, in.data});
  }
  ResponderOutputs outputs(model.signature(), responder);
  const int64_t start = absl::GetCurrentTimeNanos();
  absl::Status st = model.ExecuteHost(inputs, request.params, outputs);
  if (st.ok()) {
    const ExecutionTiming timing{0, absl::GetCurrentTimeNanos() - start, 0};
    model.statistics().RecordExecution(InferenceCount(request), timing);
    responder->ReportTiming(timing);
  }
  responder->Complete(std::move(st));
}

// Ends `exec`: every live request still OK takes `shared` (the outcome of
// the work the requests share), then the responder or `done` learns it.
void Finish(std::unique_ptr<Execution> exec, absl::Status shared) {
  for (Slot& s : exec->slots) {
    if (s.live && s.status->ok()) *s.status = shared;
  }
  if (exec->single != nullptr) {
    exec->single->Complete(std::move(exec->owned_status));
  } else {
    std::move(exec->done)(std::move(shared));
  }
}

// Checks `request` against its model and fills `outputs` (one per
// signature output).
absl::Status ValidateRequest(const InferRequest& request,
                             absl::InlinedVector<TensorDesc, 2>* outputs) {
  absl::InlinedVector<TensorDesc, 4> input_descs;
  for (const InferInput& in : request.inputs) input_descs.push_back(in.desc);
  outputs->resize(request.model->signature().outputs.size());
  return request.model->Validate(input_descs, request.params, absl::MakeSpan(*outputs));
}

// Validates each request, asks its responder for device outputs and adds
// its bytes to the layout. False (with the slot's status set) when the
// request cannot run.
bool Prepare(Slot& s, Device& device, uint64_t* in_total, uint64_t* out_total,
             uint64_t* staged_in, uint64_t* staged_out) {
  const ModelSignature& sig = s.request->model->signature();
  absl::Status st = ValidateRequest(*s.request, &s.output_descs);
  if (st.ok() && (sig.decoupled || sig.host_execution)) {
    st = absl::FailedPreconditionError(absl::StrCat(
        "model '", sig.name, "' does not run on a device stream (decoupled or host-executed)"));
  }
  if (!st.ok()) {
    *s.status = std::move(st);
    return false;
  }
  s.outputs_pinned = s.responder->HostOutputsPinned();
  s.direct_outputs.assign(s.output_descs.size(), nullptr);
  for (size_t i = 0; i < s.output_descs.size(); ++i) {
    s.direct_outputs[i] = s.responder->AllocateDeviceOutput(static_cast<int>(i), sig.outputs[i],
                                                            s.output_descs[i], device);
  }
  // This request's bytes first, then added to the totals, all checked.
  uint64_t in = 0, out = 0, sin = 0, sout = 0;
  bool overflow = false;
  for (const InferInput& input : s.request->inputs) {
    if (input.device == &device) continue;
    overflow |= !CheckedAdd(in, AlignUp(input.desc.byte_size), &in);
    if (input.device == nullptr && !input.pinned) {
      overflow |= !CheckedAdd(sin, AlignUp(input.desc.byte_size), &sin);
    }
  }
  for (size_t i = 0; i < s.output_descs.size(); ++i) {
    if (s.direct_outputs[i] != nullptr) continue;
    overflow |= !CheckedAdd(out, AlignUp(s.output_descs[i].byte_size), &out);
    if (!s.outputs_pinned) {
      overflow |= !CheckedAdd(sout, AlignUp(s.output_descs[i].byte_size), &sout);
    }
  }
  uint64_t sum = 0;
  overflow |= !CheckedAdd(*in_total, in, &sum) || !CheckedAdd(sum, *out_total, &sum) ||
              !CheckedAdd(sum, out, &sum) || !CheckedAdd(*staged_in, sin, &sum) ||
              !CheckedAdd(sum, *staged_out, &sum) || !CheckedAdd(sum, sout, &sum);
  if (overflow) {
    *s.status = absl::InvalidArgumentError("request tensors exceed the addressable size");
    return false;
  }
  *in_total += in;
  *out_total += out;
  *staged_in += sin;
  *staged_out += sout;
  return true;
}

// Enqueues every live request of `exec` on `stream` and finishes it in
// stream order. The device buffer holds every request's inputs, then every
// request's outputs; the staging block their pageable inputs, then their
// pageable outputs: so the staged copies of all the requests join into one
// each way (CopyJoiner).
// With `split`, the models run on split->stream (see ModelStream).
void Run(std::unique_ptr<Execution> exec, Stream& stream, DeviceAllocator& allocator,
         const ModelStream* split) {
  Device& device = stream.device();
  uint64_t in_total = 0, out_total = 0, staged_in = 0, staged_out = 0;
  size_t live = 0;
  for (Slot& s : exec->slots) {
    // A request that failed before (its status not OK) is left as it is.
    s.live = s.status->ok() && Prepare(s, device, &in_total, &out_total, &staged_in, &staged_out);
    s.laid_out = s.live;
    live += s.live ? 1 : 0;
  }
  if (live == 0) {
    Finish(std::move(exec), absl::OkStatus());
    return;
  }
  const uint64_t total = in_total + out_total;  // checked in Prepare
  absl::StatusOr<void*> buffer = allocator.Allocate(device, stream, total == 0 ? kAlign : total);
  if (!buffer.ok()) {
    Finish(std::move(exec), buffer.status());
    return;
  }
  exec->buffer = *buffer;
  uint8_t* in_cursor = static_cast<uint8_t*>(exec->buffer);
  uint8_t* out_cursor = in_cursor + in_total;
  if (staged_in + staged_out > 0) {
    exec->staging = StagingBlock(allocator, device, staged_in + staged_out);
  }
  uint8_t* staged = exec->staging.data();
  uint8_t* staged_out_cursor = staged == nullptr ? nullptr : staged + staged_in;
  // From here the stream may write into `exec` (marks): it is freed only
  // in stream order. `st`: a failure of the work the requests share.
  absl::Status st = stream.MarkTime(&exec->marks[0]);

  CopyJoiner staged_inputs(stream, &Stream::CopyHostToDevice);
  for (Slot& s : exec->slots) {
    if (!s.live) continue;
    for (size_t i = 0; i < s.request->inputs.size() && st.ok(); ++i) {
      const InferInput& in = s.request->inputs[i];
      if (in.device == &device) {
        s.device_inputs.push_back(DeviceTensor{&in.desc, const_cast<void*>(in.data)});
        s.in_buffer = false;
        continue;
      }
      s.device_inputs.push_back(DeviceTensor{&in.desc, in_cursor});
      if (in.device != nullptr) {
        if (in.desc.byte_size > 0) {
          st = stream.CopyFromPeer(in_cursor, *in.device, in.data, in.desc.byte_size);
        }
      } else if (staged != nullptr && !in.pinned) {
        if (in.desc.byte_size > 0) {
          std::memcpy(staged, in.data, in.desc.byte_size);
          st = staged_inputs.Add(in_cursor, staged, in.desc.byte_size);
        }
        staged += AlignUp(in.desc.byte_size);
      } else {
        st = stream.CopyHostToDevice(in_cursor, in.data, in.desc.byte_size);
      }
      in_cursor += AlignUp(in.desc.byte_size);
    }
    for (size_t i = 0; i < s.output_descs.size(); ++i) {
      const TensorDesc& d = s.output_descs[i];
      if (s.direct_outputs[i] != nullptr) {
        s.device_outputs.push_back(DeviceTensor{&d, s.direct_outputs[i]});
        s.in_buffer = false;
        continue;
      }
      s.device_outputs.push_back(DeviceTensor{&d, out_cursor});
      out_cursor += AlignUp(d.byte_size);
    }
  }
  if (absl::Status flushed = staged_inputs.Flush(); st.ok()) st = std::move(flushed);
  // The stream the models run on: `stream`, or the model stream once it
  // waits for the inputs (and `stream` for the model to start).
  Stream* model_on = &stream;
  if (split != nullptr && split->stream != &stream && st.ok()) {
    st = stream.RecordEvent(*split->inputs_copied);
    if (st.ok()) st = split->stream->WaitEvent(*split->inputs_copied);
    if (st.ok()) st = split->stream->RecordEvent(*split->started);
    if (st.ok()) {
      model_on = split->stream;
      st = stream.WaitEvent(*split->started);
    }
  }
  if (st.ok()) st = stream.MarkTime(&exec->marks[1]);
  // Each run of requests of one model in one ExecuteMany call (a group's
  // requests are ordered by model); a failed call fails its request alone.
  absl::InlinedVector<DeviceCall, 1> calls;
  absl::InlinedVector<Slot*, 1> called;
  for (size_t k = 0; k < exec->slots.size() && st.ok();) {
    const Model* model = exec->slots[k].request->model.get();
    calls.clear();
    called.clear();
    for (; k < exec->slots.size() && exec->slots[k].request->model.get() == model; ++k) {
      Slot& s = exec->slots[k];
      if (!s.live) continue;
      calls.push_back(
          DeviceCall{s.device_inputs, &s.request->params, s.device_outputs, s.in_buffer, {}});
      called.push_back(&s);
    }
    if (calls.empty()) continue;
    {
      // Only the execution's own completion below may be waited for here,
      // never a callback inside the model.
      InlineCompletionScope not_inside(false);
      model->ExecuteMany(*model_on, absl::MakeSpan(calls));
    }
    for (size_t c = 0; c < calls.size(); ++c) {
      if (calls[c].status.ok()) continue;
      *called[c]->status = std::move(calls[c].status);
      called[c]->live = false;
    }
  }
  if (model_on != &stream) {
    // Nothing on `stream` may go on (output copies, the buffer's free)
    // before the models are done with the buffer.
    absl::Status ordered = model_on->RecordEvent(*split->computed);
    if (ordered.ok()) ordered = stream.WaitEvent(*split->computed);
    if (!ordered.ok()) {
      model_on->Synchronize().IgnoreError();
      if (st.ok()) st = std::move(ordered);
    }
  }
  if (st.ok()) st = stream.MarkTime(&exec->marks[2]);
  CopyJoiner staged_outputs(stream, &Stream::CopyDeviceToHost);
  for (size_t k = 0; k < exec->slots.size() && st.ok(); ++k) {
    Slot& s = exec->slots[k];
    if (!s.laid_out) continue;
    const ModelSignature& sig = s.request->model->signature();
    for (size_t i = 0; i < s.output_descs.size() && st.ok(); ++i) {
      if (s.direct_outputs[i] != nullptr) continue;
      const TensorDesc& d = s.output_descs[i];
      // The staging block mirrors the outputs' place in the device buffer,
      // also for outputs nobody copies, so the others still join.
      uint8_t* staged_at = nullptr;
      if (staged_out_cursor != nullptr && !s.outputs_pinned) {
        staged_at = staged_out_cursor;
        staged_out_cursor += AlignUp(d.byte_size);
      }
      if (!s.live) continue;
      void* host = s.responder->AllocateOutput(static_cast<int>(i), sig.outputs[i], d);
      if (host == nullptr || d.byte_size == 0) continue;
      if (staged_at != nullptr) {
        st = staged_outputs.Add(staged_at, s.device_outputs[i].data, d.byte_size);
        exec->staged_outputs.push_back({k, host, staged_at, d.byte_size});
      } else {
        st = stream.CopyDeviceToHost(host, s.device_outputs[i].data, d.byte_size);
      }
    }
  }
  if (absl::Status flushed = staged_outputs.Flush(); st.ok()) st = std::move(flushed);
  if (st.ok()) {
    if (absl::Status mark = stream.MarkTime(&exec->marks[3]); !mark.ok()) {
      exec->marks[3] = exec->marks[2];
    }
  }
  // Finish in stream order, also after a failure: work already enqueued may
  // still read the buffer, write the marks or the responders' host outputs.
  Execution* raw = exec.release();
  absl::Status enq = stream.ThenCallback([raw, &allocator, &stream, st](absl::Status s) mutable {
    std::unique_ptr<Execution> owned(raw);
    allocator.Free(stream.device(), stream, owned->buffer);
    const absl::Status shared = st.ok() ? std::move(s) : std::move(st);
    if (shared.ok()) {
      for (const Execution::StagedOutput& o : owned->staged_outputs) {
        if (owned->slots[o.slot].live) std::memcpy(o.host, o.staged, o.bytes);
      }
    }
    owned->staging.Reset();
    if (shared.ok()) {
      // The requests ran together: each is one execution of its model with
      // an equal share of the time.
      int64_t ran = 0;
      for (const Slot& slot : owned->slots) ran += slot.live ? 1 : 0;
      const int64_t* m = owned->marks;
      const int64_t n = std::max<int64_t>(ran, 1);
      const ExecutionTiming timing{(m[1] - m[0]) / n, (m[2] - m[1]) / n, (m[3] - m[2]) / n};
      for (Slot& slot : owned->slots) {
        if (!slot.live) continue;
        slot.request->model->statistics().RecordExecution(InferenceCount(*slot.request), timing);
        slot.responder->ReportTiming(timing);
      }
    }
    Finish(std::move(owned), shared);
  });
  if (!enq.ok()) {
    // No callback will run: wait for the stream here instead.
    stream.Synchronize().IgnoreError();
    std::unique_ptr<Execution> owned(raw);
    allocator.Free(stream.device(), stream, owned->buffer);
    owned->staging.Reset();
    Finish(std::move(owned), st.ok() ? std::move(enq) : std::move(st));
  }
}

}  // namespace

void ExecuteOnDevice(InferRequest request, Stream& stream, DeviceAllocator& allocator,
                     InferResponder* responder, const ModelStream* model_stream) {
  const ModelSignature& sig = request.model->signature();
  if (sig.decoupled || sig.host_execution) {
    absl::InlinedVector<TensorDesc, 2> output_descs;
    if (absl::Status st = ValidateRequest(request, &output_descs); !st.ok()) {
      responder->Complete(std::move(st));
    } else if (sig.decoupled) {
      ExecuteDecoupled(std::move(request), responder);
    } else {
      ExecuteHost(request, responder);
    }
    return;
  }
  auto exec = std::make_unique<Execution>();
  exec->owned_request = std::move(request);
  exec->single = responder;
  Slot& slot = exec->slots.emplace_back();
  slot.request = &exec->owned_request;
  slot.responder = responder;
  slot.status = &exec->owned_status;
  Run(std::move(exec), stream, allocator, model_stream);
}

void ExecuteGroupOnDevice(absl::Span<GroupedRequest> requests, Stream& stream,
                          DeviceAllocator& allocator,
                          absl::AnyInvocable<void(absl::Status) &&> done) {
  auto exec = std::make_unique<Execution>();
  exec->done = std::move(done);
  exec->slots.resize(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    exec->slots[i].request = requests[i].request;
    exec->slots[i].responder = requests[i].responder;
    exec->slots[i].status = &requests[i].status;
  }
  // Requests of one model side by side: their tensors lie next to each
  // other, and the model gets them in one ExecuteMany call.
  std::stable_sort(exec->slots.begin(), exec->slots.end(), [](const Slot& a, const Slot& b) {
    return a.request->model.get() < b.request->model.get();
  });
  Run(std::move(exec), stream, allocator, nullptr);
}

}  // namespace inferd
