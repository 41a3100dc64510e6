// cuda_call_bench: host CPU time of the CUDA calls a request makes on the
// GPU path (copies, a kernel launch, event record/query/synchronize, a host
// function), per call, from 1 and from N threads at once on one device
// (each call free for all, and each call under one shared lock)
// (docs/PERFORMANCE-REQUEST-PATH.md, "Where a GPU request's CPU goes"). Thread CPU time,
// so time spent asleep in a blocking wait does not count.
//   cuda_call_bench [threads=8] [iterations=3000]
#include <cuda_runtime.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

__global__ void CopyKernel(const unsigned char* in, unsigned char* out, size_t n) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    out[i] = in[i];
  }
}

void Noop(void*) {}

double ThreadCpuMicros() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

enum class Call {
  kCopyToDevicePinned,
  kCopyToHostPinned,
  kCopyToDevicePageable,
  kCopyDeviceToDevice,
  kCopyKernel,
  kEventRecord,
  kEventQueryDone,
  kEventRecordAndBlockingSync,
  kLaunchHostFunc,
};
constexpr Call kCalls[] = {Call::kCopyToDevicePinned,   Call::kCopyToHostPinned,
                           Call::kCopyToDevicePageable, Call::kCopyDeviceToDevice,
                           Call::kCopyKernel,           Call::kEventRecord,
                           Call::kEventQueryDone,       Call::kEventRecordAndBlockingSync,
                           Call::kLaunchHostFunc};

const char* Name(Call c) {
  switch (c) {
    case Call::kCopyToDevicePinned: return "cudaMemcpyAsync H2D, pinned";
    case Call::kCopyToHostPinned: return "cudaMemcpyAsync D2H, pinned";
    case Call::kCopyToDevicePageable: return "cudaMemcpyAsync H2D, pageable";
    case Call::kCopyDeviceToDevice: return "cudaMemcpyAsync D2D";
    case Call::kCopyKernel: return "copy kernel launch";
    case Call::kEventRecord: return "cudaEventRecord";
    case Call::kEventQueryDone: return "cudaEventQuery (complete)";
    case Call::kEventRecordAndBlockingSync: return "record + blocking-sync wait";
    case Call::kLaunchHostFunc: return "cudaLaunchHostFunc";
  }
  return "";
}

bool Sized(Call c) {
  return c != Call::kEventRecord && c != Call::kEventQueryDone &&
         c != Call::kEventRecordAndBlockingSync && c != Call::kLaunchHostFunc;
}

// Mean thread CPU microseconds per call of `c` on a stream of this thread;
// with `lock`, each call holds it (callers take turns instead of meeting
// inside the driver).
double Measure(Call c, int iterations, size_t bytes, std::mutex* lock = nullptr) {
  constexpr size_t kBuffer = 1 << 20;
  cudaStream_t stream = nullptr;
  void *pinned = nullptr, *a = nullptr, *b = nullptr;
  cudaEvent_t event = nullptr, blocking = nullptr;
  std::vector<char> pageable(kBuffer);
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaHostAlloc(&pinned, kBuffer, 0) != cudaSuccess || cudaMalloc(&a, kBuffer) != cudaSuccess ||
      cudaMalloc(&b, kBuffer) != cudaSuccess ||
      cudaEventCreateWithFlags(&event, cudaEventDisableTiming) != cudaSuccess ||
      cudaEventCreateWithFlags(&blocking, cudaEventDisableTiming | cudaEventBlockingSync) !=
          cudaSuccess) {
    std::fprintf(stderr, "cuda_call_bench: setup failed: %s\n",
                 cudaGetErrorString(cudaGetLastError()));
    std::exit(1);
  }
  cudaEventRecord(event, stream);
  cudaStreamSynchronize(stream);
  double total = 0;
  for (int i = 0; i < iterations; ++i) {
    const double start = ThreadCpuMicros();
    std::unique_lock<std::mutex> turn;
    if (lock != nullptr) turn = std::unique_lock<std::mutex>(*lock);
    switch (c) {
      case Call::kCopyToDevicePinned:
        cudaMemcpyAsync(a, pinned, bytes, cudaMemcpyHostToDevice, stream);
        break;
      case Call::kCopyToHostPinned:
        cudaMemcpyAsync(pinned, a, bytes, cudaMemcpyDeviceToHost, stream);
        break;
      case Call::kCopyToDevicePageable:
        cudaMemcpyAsync(a, pageable.data(), bytes, cudaMemcpyHostToDevice, stream);
        break;
      case Call::kCopyDeviceToDevice:
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream);
        break;
      case Call::kCopyKernel:
        CopyKernel<<<1, 128, 0, stream>>>(static_cast<const unsigned char*>(a),
                                          static_cast<unsigned char*>(b), bytes);
        break;
      case Call::kEventRecord:
        cudaEventRecord(event, stream);
        break;
      case Call::kEventQueryDone:
        cudaEventQuery(event);
        break;
      case Call::kEventRecordAndBlockingSync:
        cudaEventRecord(blocking, stream);
        cudaEventSynchronize(blocking);
        break;
      case Call::kLaunchHostFunc:
        cudaLaunchHostFunc(stream, Noop, nullptr);
        break;
    }
    if (turn.owns_lock()) turn.unlock();
    total += ThreadCpuMicros() - start;
    if (i % 64 == 63) cudaStreamSynchronize(stream);  // bounded queue depth
  }
  cudaStreamSynchronize(stream);
  cudaEventDestroy(event);
  cudaEventDestroy(blocking);
  cudaFree(a);
  cudaFree(b);
  cudaFreeHost(pinned);
  cudaStreamDestroy(stream);
  return total / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 8;
  const int iterations = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3000;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("cuda_call_bench: no GPU\n");
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("%s: host CPU us per call, mean of %d calls per thread\n", prop.name, iterations);
  const std::string many = std::to_string(threads) + " threads";
  std::printf("%-32s %8s %10s %10s %16s\n", "call", "bytes", "1 thread", many.c_str(),
              (many + ", 1 lock").c_str());
  for (Call c : kCalls) {
    for (size_t bytes : {size_t{64}, size_t{16384}}) {
      if (!Sized(c) && bytes != 64) continue;
      const double one = Measure(c, iterations, bytes);
      auto together = [&](std::mutex* lock) {
        std::vector<double> each(threads);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
          pool.emplace_back([&, t] { each[t] = Measure(c, iterations, bytes, lock); });
        }
        for (auto& t : pool) t.join();
        double mean = 0;
        for (double v : each) mean += v / threads;
        return mean;
      };
      std::mutex lock;
      const double free_for_all = together(nullptr);
      // A blocking wait is not taken under the lock (it would hold it
      // while asleep): "-".
      char taking_turns[32] = "-";
      if (c != Call::kEventRecordAndBlockingSync) {
        std::snprintf(taking_turns, sizeof taking_turns, "%.2f", together(&lock));
      }
      std::printf("%-32s %8s %10.2f %10.2f %16s\n", Name(c),
                  Sized(c) ? std::to_string(bytes).c_str() : "-", one, free_for_all,
                  taking_turns);
    }
  }
  return 0;
}
