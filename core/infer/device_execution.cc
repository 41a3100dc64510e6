#include "core/infer/device_execution.h"

#include <cstring>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

constexpr uint64_t kAlign = 256;

uint64_t AlignUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Joins copies that continue, on both sides, where the previous one ended
// (256-byte aligned): the staging block and the device buffer lay pageable
// tensors out alike, so a request's staged inputs go over in one copy call
// and its staged outputs come back in one, instead of one call per tensor
// (each costs microseconds of driver time on a GPU).
class CopyJoiner {
 public:
  using CopyFn = absl::Status (Stream::*)(void*, const void*, size_t);
  CopyJoiner(Stream& stream, CopyFn copy) : stream_(stream), copy_(copy) {}

  absl::Status Add(void* dst, const void* src, uint64_t bytes) {
    if (bytes == 0) return absl::OkStatus();
    auto* d = static_cast<uint8_t*>(dst);
    const auto* s = static_cast<const uint8_t*>(src);
    if (bytes_ > 0 && d == dst_ + AlignUp(bytes_) && s == src_ + AlignUp(bytes_)) {
      bytes_ = static_cast<uint64_t>(d - dst_) + bytes;
      return absl::OkStatus();
    }
    absl::Status st = Flush();
    dst_ = d;
    src_ = s;
    bytes_ = bytes;
    return st;
  }

  absl::Status Flush() {
    if (bytes_ == 0) return absl::OkStatus();
    const uint64_t n = bytes_;
    bytes_ = 0;
    return (stream_.*copy_)(dst_, src_, n);
  }

 private:
  Stream& stream_;
  const CopyFn copy_;
  uint8_t* dst_ = nullptr;
  const uint8_t* src_ = nullptr;
  uint64_t bytes_ = 0;  // from dst_/src_ to the end of the last tensor joined
};

// Everything one in-flight execution owns until its stream callback runs.
struct Execution {
  InferRequest request;
  absl::InlinedVector<TensorDesc, 2> output_descs;
  absl::InlinedVector<DeviceTensor, 4> device_inputs;
  absl::InlinedVector<DeviceTensor, 2> device_outputs;
  void* buffer = nullptr;
  // Pinned block that host inputs and outputs are staged through (null:
  // they are copied directly), and the outputs to copy out of it once the
  // stream has run: to host, from staged, bytes.
  StagingBlock staging;
  struct StagedOutput {
    void* host;
    const void* staged;
    uint64_t bytes;
  };
  absl::InlinedVector<StagedOutput, 2> staged_outputs;
  // Stream times (Stream::MarkTime) at the start, after the input copies,
  // after the model and after the output copies.
  int64_t marks[4] = {0, 0, 0, 0};
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

}  // namespace

void ExecuteOnDevice(InferRequest request, Stream& stream, DeviceAllocator& allocator,
                     InferResponder* responder) {
  auto exec = std::make_unique<Execution>();
  exec->request = std::move(request);
  const Model& model = *exec->request.model;
  const ModelSignature& sig = model.signature();

  absl::InlinedVector<TensorDesc, 4> input_descs;
  for (const InferInput& in : exec->request.inputs) input_descs.push_back(in.desc);
  exec->output_descs.resize(sig.outputs.size());
  if (absl::Status st = model.Validate(input_descs, exec->request.params,
                                       absl::MakeSpan(exec->output_descs));
      !st.ok()) {
    responder->Complete(std::move(st));
    return;
  }
  if (sig.decoupled) {
    ExecuteDecoupled(std::move(exec->request), responder);
    return;
  }
  if (sig.host_execution) {
    ExecuteHost(exec->request, responder);
    return;
  }

  // Outputs the responder wants on the device are written in place; inputs
  // already on this device are read in place. One device buffer holds every
  // other input and output, 256-byte aligned.
  Device& device = stream.device();
  absl::InlinedVector<void*, 2> direct_outputs(exec->output_descs.size(), nullptr);
  for (size_t i = 0; i < exec->output_descs.size(); ++i) {
    direct_outputs[i] = responder->AllocateDeviceOutput(static_cast<int>(i), sig.outputs[i],
                                                        exec->output_descs[i], device);
  }
  // Pageable host inputs and outputs go through one pinned staging block;
  // pinned ones are copied directly.
  const bool outputs_pinned = responder->HostOutputsPinned();
  uint64_t total = 0;
  uint64_t host_total = 0;
  bool overflow = false;
  for (const InferInput& in : exec->request.inputs) {
    if (in.device == &device) continue;
    overflow |= !CheckedAdd(total, AlignUp(in.desc.byte_size), &total);
    if (in.device == nullptr && !in.pinned) {
      overflow |= !CheckedAdd(host_total, AlignUp(in.desc.byte_size), &host_total);
    }
  }
  for (size_t i = 0; i < exec->output_descs.size(); ++i) {
    if (direct_outputs[i] == nullptr) {
      overflow |= !CheckedAdd(total, AlignUp(exec->output_descs[i].byte_size), &total);
      if (!outputs_pinned) {
        overflow |=
            !CheckedAdd(host_total, AlignUp(exec->output_descs[i].byte_size), &host_total);
      }
    }
  }
  if (overflow) {
    responder->Complete(absl::InvalidArgumentError("request tensors exceed the addressable size"));
    return;
  }
  absl::StatusOr<void*> buffer = allocator.Allocate(device, stream, total == 0 ? kAlign : total);
  if (!buffer.ok()) {
    responder->Complete(buffer.status());
    return;
  }
  exec->buffer = *buffer;
  auto* cursor = static_cast<uint8_t*>(exec->buffer);
  if (host_total > 0) exec->staging = StagingBlock(allocator, device, host_total);
  uint8_t* staged = exec->staging.data();
  // From here the stream may write into `exec` (marks): it is freed only
  // in stream order.
  absl::Status st = stream.MarkTime(&exec->marks[0]);

  CopyJoiner staged_inputs(stream, &Stream::CopyHostToDevice);
  for (size_t i = 0; i < exec->request.inputs.size() && st.ok(); ++i) {
    const InferInput& in = exec->request.inputs[i];
    if (in.device == &device) {
      exec->device_inputs.push_back(DeviceTensor{&in.desc, const_cast<void*>(in.data)});
      continue;
    }
    exec->device_inputs.push_back(DeviceTensor{&in.desc, cursor});
    if (in.device != nullptr) {
      if (in.desc.byte_size > 0) {
        st = stream.CopyFromPeer(cursor, *in.device, in.data, in.desc.byte_size);
      }
    } else if (staged != nullptr && !in.pinned) {
      if (in.desc.byte_size > 0) {
        std::memcpy(staged, in.data, in.desc.byte_size);
        st = staged_inputs.Add(cursor, staged, in.desc.byte_size);
      }
      staged += AlignUp(in.desc.byte_size);
    } else {
      st = stream.CopyHostToDevice(cursor, in.data, in.desc.byte_size);
    }
    cursor += AlignUp(in.desc.byte_size);
  }
  if (absl::Status flushed = staged_inputs.Flush(); st.ok()) st = std::move(flushed);
  for (size_t i = 0; i < exec->output_descs.size(); ++i) {
    const TensorDesc& d = exec->output_descs[i];
    if (direct_outputs[i] != nullptr) {
      exec->device_outputs.push_back(DeviceTensor{&d, direct_outputs[i]});
      continue;
    }
    exec->device_outputs.push_back(DeviceTensor{&d, cursor});
    cursor += AlignUp(d.byte_size);
  }
  if (st.ok()) st = stream.MarkTime(&exec->marks[1]);
  if (st.ok()) {
    st = model.Execute(stream, exec->device_inputs, exec->request.params, exec->device_outputs);
  }
  if (st.ok()) st = stream.MarkTime(&exec->marks[2]);
  CopyJoiner staged_outputs(stream, &Stream::CopyDeviceToHost);
  for (size_t i = 0; i < exec->output_descs.size() && st.ok(); ++i) {
    if (direct_outputs[i] != nullptr) continue;
    const TensorDesc& d = exec->output_descs[i];
    void* host = responder->AllocateOutput(static_cast<int>(i), sig.outputs[i], d);
    if (host == nullptr || d.byte_size == 0) continue;
    if (staged != nullptr && !outputs_pinned) {
      st = staged_outputs.Add(staged, exec->device_outputs[i].data, d.byte_size);
      exec->staged_outputs.push_back({host, staged, d.byte_size});
      staged += AlignUp(d.byte_size);
    } else {
      st = stream.CopyDeviceToHost(host, exec->device_outputs[i].data, d.byte_size);
    }
  }
  if (absl::Status flushed = staged_outputs.Flush(); st.ok()) st = std::move(flushed);
  if (st.ok()) {
    if (absl::Status mark = stream.MarkTime(&exec->marks[3]); !mark.ok()) {
      exec->marks[3] = exec->marks[2];
    }
  }
  // Finish in stream order, also after a failure: work already enqueued may
  // still read the buffer, write the marks or the responder's host outputs.
  Execution* raw = exec.release();
  absl::Status enq =
      stream.ThenCallback([raw, &allocator, &stream, responder, st](absl::Status s) mutable {
        std::unique_ptr<Execution> owned(raw);
        allocator.Free(stream.device(), stream, owned->buffer);
        if (st.ok() && s.ok()) {
          for (const Execution::StagedOutput& o : owned->staged_outputs) {
            std::memcpy(o.host, o.staged, o.bytes);
          }
        }
        owned->staging.Reset();
        if (!st.ok()) {
          responder->Complete(std::move(st));
          return;
        }
        if (s.ok()) {
          const int64_t* m = owned->marks;
          const ExecutionTiming timing{m[1] - m[0], m[2] - m[1], m[3] - m[2]};
          owned->request.model->statistics().RecordExecution(InferenceCount(owned->request),
                                                             timing);
          responder->ReportTiming(timing);
        }
        responder->Complete(std::move(s));
      });
  if (!enq.ok()) {
    // No callback will run: wait for the stream here instead.
    stream.Synchronize().IgnoreError();
    std::unique_ptr<Execution> owned(raw);
    allocator.Free(stream.device(), stream, owned->buffer);
    owned->staging.Reset();
    responder->Complete(st.ok() ? std::move(enq) : std::move(st));
  }
}

}  // namespace inferd
