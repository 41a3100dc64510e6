#include "core/infer/device_execution.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

constexpr uint64_t kAlign = 256;

uint64_t AlignUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Everything one in-flight execution owns until its stream callback runs.
struct Execution {
  InferRequest request;
  absl::InlinedVector<TensorDesc, 2> output_descs;
  absl::InlinedVector<DeviceTensor, 4> device_inputs;
  absl::InlinedVector<DeviceTensor, 2> device_outputs;
  void* buffer = nullptr;
};

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

  // Outputs the responder wants on the device are written in place; inputs
  // already on this device are read in place. One device buffer holds every
  // other input and output, 256-byte aligned.
  Device& device = stream.device();
  absl::InlinedVector<void*, 2> direct_outputs(exec->output_descs.size(), nullptr);
  for (size_t i = 0; i < exec->output_descs.size(); ++i) {
    direct_outputs[i] = responder->AllocateDeviceOutput(static_cast<int>(i), sig.outputs[i],
                                                        exec->output_descs[i], device);
  }
  uint64_t total = 0;
  bool overflow = false;
  for (const InferInput& in : exec->request.inputs) {
    if (in.device != &device) overflow |= !CheckedAdd(total, AlignUp(in.desc.byte_size), &total);
  }
  for (size_t i = 0; i < exec->output_descs.size(); ++i) {
    if (direct_outputs[i] == nullptr) {
      overflow |= !CheckedAdd(total, AlignUp(exec->output_descs[i].byte_size), &total);
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

  absl::Status st;
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
    } else {
      st = stream.CopyHostToDevice(cursor, in.data, in.desc.byte_size);
    }
    cursor += AlignUp(in.desc.byte_size);
  }
  for (size_t i = 0; i < exec->output_descs.size(); ++i) {
    const TensorDesc& d = exec->output_descs[i];
    if (direct_outputs[i] != nullptr) {
      exec->device_outputs.push_back(DeviceTensor{&d, direct_outputs[i]});
      continue;
    }
    exec->device_outputs.push_back(DeviceTensor{&d, cursor});
    cursor += AlignUp(d.byte_size);
  }
  if (st.ok()) {
    st = model.Execute(stream, exec->device_inputs, exec->request.params, exec->device_outputs);
  }
  for (size_t i = 0; i < exec->output_descs.size() && st.ok(); ++i) {
    if (direct_outputs[i] != nullptr) continue;
    const TensorDesc& d = exec->output_descs[i];
    void* host = responder->AllocateOutput(static_cast<int>(i), sig.outputs[i], d);
    if (host != nullptr && d.byte_size > 0) {
      st = stream.CopyDeviceToHost(host, exec->device_outputs[i].data, d.byte_size);
    }
  }
  // Finish in stream order, also after a failure: work already enqueued may
  // still read the buffer or write the responder's host outputs.
  Execution* raw = exec.release();
  absl::Status enq =
      stream.ThenCallback([raw, &allocator, &stream, responder, st](absl::Status s) mutable {
        std::unique_ptr<Execution> owned(raw);
        allocator.Free(stream.device(), stream, owned->buffer);
        responder->Complete(st.ok() ? std::move(s) : std::move(st));
      });
  if (!enq.ok()) {
    // No callback will run: wait for the stream here instead.
    stream.Synchronize().IgnoreError();
    std::unique_ptr<Execution> owned(raw);
    allocator.Free(stream.device(), stream, owned->buffer);
    responder->Complete(st.ok() ? std::move(enq) : std::move(st));
  }
}

}  // namespace inferd
