// mlp_gpu_bench: latency and throughput of the mlp backend on the first
// GPU, eager (one cublasLtMatmul per layer per call) vs CUDA graphs (one
// cudaGraphLaunch per call), for the PyTorch baseline shape
// (1024 -> 4096 -> 4096 -> 1024, relu) or the sizes given. Run by hand or
// by scripts/gpu/mlp_bench.sh (not a test):
//   mlp_gpu_bench [iterations=200] [sizes=1024,4096,4096,1024] [dtypes=fp32,fp16]
//                 [batches=1,8,64,256,1024]
// Columns per (dtype, path, batch):
//   sync_us   host time of Execute + stream sync, per call (what one client sees)
//   piped_us  host time per call with `iterations` calls in flight
//   gpu_us    GPU time per call: the stream is held by a host callback
//             until all calls are enqueued, then CUDA events time the
//             back-to-back run (no host launch cost in it)
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/discovery.h"
#include "core/models/mlp_model.h"

namespace inferd {
namespace {

std::vector<int64_t> ParseList(const char* text, std::vector<int64_t> fallback) {
  if (text == nullptr) return fallback;
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1) return fallback;
    out.push_back(v);
  }
  return out.empty() ? fallback : out;
}

MlpNetwork Network(DataType dtype, const std::vector<int64_t>& sizes) {
  MlpNetwork net;
  net.dtype = dtype;
  uint64_t s = 1;
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    MlpLayerWeights layer;
    layer.in_features = sizes[l];
    layer.out_features = sizes[l + 1];
    layer.activation = l + 2 == sizes.size() ? MlpActivation::kNone : MlpActivation::kRelu;
    layer.weight.resize(sizes[l] * sizes[l + 1]);
    for (float& w : layer.weight) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      w = (static_cast<float>(s >> 40) / 16777216.0f - 0.5f) / 32.0f;
      if (dtype == DataType::kFp16) w = HalfToFloat(FloatToHalf(w));
    }
    layer.bias.assign(sizes[l + 1], 0.01f);
    net.layers.push_back(std::move(layer));
  }
  return net;
}

// Holds a stream until released (or 5 s, so a full launch queue cannot
// deadlock the bench; then gpu_us includes some launch time).
struct StreamGate {
  std::atomic<bool> open{false};
  static void CUDART_CB Wait(void* self) {
    auto* g = static_cast<StreamGate*>(self);
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    while (!g->open.load(std::memory_order_acquire) && absl::Now() < give_up) {
    }
  }
};

struct Row {
  double sync_us = 0, piped_us = 0, gpu_us = 0;
  bool ok = true;
};

Row Measure(const MlpModel& model, Stream& s, const DeviceTensor& din, const DeviceTensor& dout,
            int iterations) {
  Row row;
  auto call = [&] { row.ok &= model.Execute(s, {&din, 1}, {}, {&dout, 1}).ok(); };
  for (int i = 0; i < 20; ++i) call();  // plans, graph capture, clocks
  row.ok &= s.Synchronize().ok();
  absl::Time t0 = absl::Now();
  for (int i = 0; i < iterations; ++i) {
    call();
    row.ok &= s.Synchronize().ok();
  }
  row.sync_us = absl::ToDoubleMicroseconds(absl::Now() - t0) / iterations;
  t0 = absl::Now();
  for (int i = 0; i < iterations; ++i) call();
  row.ok &= s.Synchronize().ok();
  row.piped_us = absl::ToDoubleMicroseconds(absl::Now() - t0) / iterations;

  auto stream = static_cast<cudaStream_t>(s.native_handle());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  StreamGate gate;
  const int gated = iterations < 100 ? iterations : 100;  // stays within the launch queue
  row.ok &= cudaLaunchHostFunc(stream, &StreamGate::Wait, &gate) == cudaSuccess;
  cudaEventRecord(start, stream);
  for (int i = 0; i < gated; ++i) call();
  cudaEventRecord(stop, stream);
  gate.open.store(true, std::memory_order_release);
  row.ok &= cudaEventSynchronize(stop) == cudaSuccess;
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  row.gpu_us = 1000.0 * ms / gated;
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return row;
}

int Main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  const std::vector<int64_t> sizes =
      ParseList(argc > 2 ? argv[2] : nullptr, {1024, 4096, 4096, 1024});
  const std::string dtypes = argc > 3 ? argv[3] : "fp32,fp16";
  const std::vector<int64_t> batches =
      ParseList(argc > 4 ? argv[4] : nullptr, {1, 8, 64, 256, 1024});
  int64_t max_batch = 1;
  for (int64_t b : batches) max_batch = std::max(max_batch, b);
  auto devices = DiscoverCudaDevices({}, 2);
  if (!devices.ok() || devices->empty()) {
    std::printf("no CUDA device\n");
    return 0;
  }
  Device& gpu = *(*devices)[0];
  auto lib = MlpCudaLibrary::LoadDefault();
  if (!lib.ok()) {
    std::printf("%s\n", std::string(lib.status().message()).c_str());
    return 1;
  }
  std::string shape;
  for (int64_t v : sizes) shape += (shape.empty() ? "" : "->") + std::to_string(v);
  std::printf("device: %s; mlp %s relu; %d iterations per row\n", gpu.info().name.c_str(),
              shape.c_str(), iterations);
  std::printf("%-5s %-6s %6s %10s %10s %10s %16s\n", "dtype", "path", "batch", "sync_us",
              "piped_us", "gpu_us", "samples/s(piped)");
  for (DataType dtype : {DataType::kFp32, DataType::kFp16}) {
    const char* name = dtype == DataType::kFp32 ? "fp32" : "fp16";
    if (dtypes.find(name) == std::string::npos) continue;
    const size_t in_bytes = max_batch * sizes.front() * DataTypeSize(dtype);
    const size_t out_bytes = max_batch * sizes.back() * DataTypeSize(dtype);
    void* x = *gpu.AllocateRaw(in_bytes);
    void* y = *gpu.AllocateRaw(out_bytes);
    (void)gpu.stream(0).Memset(x, 0, in_bytes);
    for (bool graphs : {false, true}) {
      ModelSignature sig;
      sig.name = "bench";
      sig.max_batch_size = static_cast<int>(max_batch);
      sig.inputs = {{"INPUT0", dtype, {-1, sizes.front()}}};
      sig.outputs = {{"OUTPUT0", dtype, {-1, sizes.back()}}};
      Device* devs[] = {&gpu};
      auto model = MlpModel::Create(sig, Network(dtype, sizes), devs, *lib, MlpOptions{graphs});
      if (!model.ok()) {
        std::printf("%s\n", std::string(model.status().message()).c_str());
        return 1;
      }
      for (int64_t batch : batches) {
        TensorDesc in{dtype,
                      {batch, sizes.front()},
                      static_cast<uint64_t>(batch * sizes.front()) * DataTypeSize(dtype)};
        TensorDesc out{dtype,
                       {batch, sizes.back()},
                       static_cast<uint64_t>(batch * sizes.back()) * DataTypeSize(dtype)};
        DeviceTensor din{&in, x};
        DeviceTensor dout{&out, y};
        const Row r = Measure(**model, gpu.stream(0), din, dout, iterations);
        std::printf("%-5s %-6s %6lld %10.1f %10.1f %10.1f %16.0f%s\n", name,
                    graphs ? "graph" : "eager", static_cast<long long>(batch), r.sync_us,
                    r.piped_us, r.gpu_us, batch * 1e6 / r.piped_us, r.ok ? "" : "  (error)");
      }
      absl::StatusOr<inferd_mlp_cuda_stats> st = (*model)->CudaStats(gpu);
      if (st.ok() && graphs) {
        std::printf(
            "# graphs: %llu captured, %llu launches, %llu eager calls, %llu failures, "
            "%llu copy-node repoint failures\n",
            static_cast<unsigned long long>(st->graphs_captured),
            static_cast<unsigned long long>(st->graph_launches),
            static_cast<unsigned long long>(st->eager_calls),
            static_cast<unsigned long long>(st->graph_failures),
            static_cast<unsigned long long>(st->repoint_failures));
      }
    }
    gpu.FreeRaw(x);
    gpu.FreeRaw(y);
  }
  return 0;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
