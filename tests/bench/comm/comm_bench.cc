// comm_bench: H2D, D2H, D2D and peer transfers through the comm engine
// against plain copies measured in the same run: cudaMemcpyAsync on pinned
// memory on GPUs (core/device/cuda/cuda_memcpy_baseline.h), memcpy on host
// devices. Prints one row per size and direction with both figures and
// their ratio (target: >= 0.9 at >= 64 MiB).
//
// What is timed, the same way on both sides (start of the request to the
// calling thread knowing the bytes landed, median of --iters):
//  - engine: AsyncTransfer (validate, pin, allocate the destination tensor
//    from the pool, issue) + WaitTransfer with no deadline; freeing the
//    result afterwards is outside the timed part;
//  - baseline: cudaMemcpyAsync + cudaStreamSynchronize between buffers
//    allocated beforehand; peer in the engine's direction (0->1, issued on
//    the destination's stream).
// Both wait with CUDA's default (spinning) synchronization.
//
//   comm_bench [--max_mib=1024] [--iters=10] [--limit=1.0] [--host_devices=N]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "core/comm/comm_engine.h"
#include "core/device/discovery.h"
#include "core/device/host_device.h"
#include "core/memory/memory_engine.h"
#include "prometheus/registry.h"
#if INFERD_BENCH_WITH_CUDA
#include "core/device/cuda/cuda_memcpy_baseline.h"
#endif

namespace inferd {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

struct Flags {
  uint64_t max_mib = 1024;
  int iters = 10;
  double limit = 1.0;
  int host_devices = 0;  // > 0: host devices even where GPUs exist
  int copy_threads = 4;  // TransferEngineOptions::copy_threads
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string("--") + name + "=";
      return absl::StartsWith(a, prefix) ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("max_mib")) {
      if (!absl::SimpleAtoi(v, &f->max_mib)) return false;
    } else if (const char* v = value("iters")) {
      if (!absl::SimpleAtoi(v, &f->iters)) return false;
    } else if (const char* v = value("limit")) {
      if (!absl::SimpleAtod(v, &f->limit)) return false;
    } else if (const char* v = value("copy_threads")) {
      if (!absl::SimpleAtoi(v, &f->copy_threads)) return false;
    } else if (const char* v = value("host_devices")) {
      if (!absl::SimpleAtoi(v, &f->host_devices)) return false;
    } else {
      return false;
    }
  }
  return f->iters > 0 && f->limit > 0 && f->limit <= 1;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds of `iters` runs of `fn` after one warm-up run.
template <typename Fn>
double Time(int iters, Fn fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const absl::Time start = absl::Now();
    fn();
    t.push_back(absl::ToDoubleSeconds(absl::Now() - start));
  }
  return Median(t);
}

// Median of `iters` values of `fn` (which returns the seconds it timed
// itself) after one warm-up run.
template <typename Fn>
double MedianOfTimed(int iters, Fn fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) t.push_back(fn());
  return Median(t);
}

void Die(const absl::Status& st, const char* what) {
  std::fprintf(stderr, "comm_bench: %s: %s\n", what, st.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(v.status(), what);
  return *std::move(v);
}

// memcpy between buffers of `bytes` (the host-device baseline).
double HostMemcpySeconds(uint64_t bytes, int iters) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  return Time(iters, [&] { std::memcpy(b.data(), a.data(), bytes); });
}

int Run(const Flags& flags) {
  std::vector<std::unique_ptr<Device>> devices;
  if (flags.host_devices == 0) {
    devices = Check(DiscoverCudaDevices({}, 4), "discovering GPUs");
  }
  const bool cuda = !devices.empty();
  if (!cuda) {
    for (int i = 0; i < std::max(1, flags.host_devices); ++i) {
      HostDeviceOptions o;
      o.index = i;
      o.ordinal = i;
      o.capacity_bytes = 4 * flags.max_mib * kMiB + (256 * kMiB);
      o.inline_when_idle = false;  // asynchronous streams, as a GPU has
      devices.push_back(std::make_unique<HostDevice>(o));
    }
  }
  std::vector<Device*> raw;
  for (auto& d : devices) raw.push_back(d.get());
  prometheus::Registry registry;
  MemoryEngineOptions mo;
  mo.pool_size_mb = 0;
  mo.max_pool_fraction = 0.9;
  mo.enable_monitoring = false;
  mo.zero_new_tensors = false;  // every transfer overwrites its destination
  auto memory = Check(MemoryEngine::Create(mo, raw, Clock::Real(), registry), "memory engine");
  CommEngineOptions co;
  co.transfer.bandwidth_limit = flags.limit;
  co.transfer.copy_threads = flags.copy_threads;
  co.transfer.calibration_bytes = 64 * kMiB;
  auto comm =
      Check(CommEngine::Create(co, raw, memory.get(), Clock::Real(), registry), "comm engine");
  TransferEngine& engine = comm->transfers();
  const CommStats stats = comm->GetStats();
  std::printf(
      "# comm_bench on %s (%zu device%s), chunk %llu MiB, overlap threshold %llu MiB, "
      "bandwidth_limit %.2f, %d iterations (median)\n",
      devices[0]->info().name.c_str(), devices.size(), devices.size() == 1 ? "" : "s",
      static_cast<unsigned long long>(stats.chunk_bytes / kMiB),
      static_cast<unsigned long long>(stats.overlap_threshold_bytes / kMiB), flags.limit,
      flags.iters);
  std::printf("# calibrated peaks (GB/s): h2d %.1f  d2h %.1f  local %.1f  peer %.1f  staged %.1f\n",
              stats.peaks[LinkKind::kHostToDevice] / 1e9,
              stats.peaks[LinkKind::kDeviceToHost] / 1e9, stats.peaks[LinkKind::kLocal] / 1e9,
              stats.peaks[LinkKind::kPeer] / 1e9, stats.peaks[LinkKind::kStaged] / 1e9);
  std::printf("%-10s %-13s %14s %14s %8s\n", "size_MiB", "direction", "baseline_GB/s",
              "engine_GB/s", "ratio");

  // Seconds from AsyncTransfer to WaitTransfer's return; frees the result
  // after the clock stopped.
  auto transfer = [&](TransferRequest r) -> double {
    const absl::Time start = absl::Now();
    TransferId id = Check(engine.AsyncTransfer(std::move(r)), "AsyncTransfer");
    TransferInfo info = Check(engine.WaitTransfer(id, absl::InfiniteFuture()), "WaitTransfer");
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (info.state != TransferState::kSucceeded) Die(info.status, "transfer");
    if (info.result.has_value()) {
      if (absl::Status st = memory->FreeTensor(info.result->id); !st.ok()) Die(st, "free");
    }
    return seconds;
  };
  auto row = [&](uint64_t bytes, const char* dir, double base_s, double engine_s) {
    const double base = static_cast<double>(bytes) / base_s / 1e9;
    const double eng = static_cast<double>(bytes) / engine_s / 1e9;
    std::printf("%-10llu %-13s %14.2f %14.2f %8.3f\n",
                static_cast<unsigned long long>(bytes / kMiB), dir, base, eng, eng / base);
    std::fflush(stdout);
  };

  for (uint64_t mib = 1; mib <= flags.max_mib; mib *= 4) {
    const uint64_t bytes = mib * kMiB;
    TensorRequest tr;
    tr.device = 0;
    tr.dtype = DataType::kUint8;
    tr.shape = {static_cast<int64_t>(bytes)};
    TensorInfo src = Check(memory->AllocateTensor(tr), "allocating the source");
    void* pinned = Check(devices[0]->AllocatePinnedHost(bytes), "pinned host buffer");
    std::memset(pinned, 3, bytes);
    std::vector<char> pageable(bytes, 4);

    // Baselines.
    double h2d_base, d2h_base, d2d_base, peer_base = 0;
    double h2d_pageable_base, d2h_pageable_base;
#if INFERD_BENCH_WITH_CUDA
    if (cuda) {
      const int o0 = devices[0]->info().ordinal;
      const int o1 = devices.size() > 1 ? devices[1]->info().ordinal : o0;
      h2d_base = Check(MeasureCudaMemcpy(MemcpyKind::kHostToDevice, o0, o0, bytes, flags.iters),
                       "baseline h2d");
      d2h_base = Check(MeasureCudaMemcpy(MemcpyKind::kDeviceToHost, o0, o0, bytes, flags.iters),
                       "baseline d2h");
      h2d_pageable_base = Check(
          MeasureCudaMemcpy(MemcpyKind::kHostToDevicePageable, o0, o0, bytes, flags.iters),
          "baseline h2d pageable");
      d2h_pageable_base = Check(
          MeasureCudaMemcpy(MemcpyKind::kDeviceToHostPageable, o0, o0, bytes, flags.iters),
          "baseline d2h pageable");
      d2d_base = Check(MeasureCudaMemcpy(MemcpyKind::kDeviceToDevice, o0, o0, bytes, flags.iters),
                       "baseline d2d");
      if (devices.size() > 1) {
        // From device 0 to device 1 on device 1's stream, as the engine's 0->1.
        peer_base = Check(MeasureCudaMemcpy(MemcpyKind::kPeer, o1, o0, bytes, flags.iters),
                          "baseline peer");
      }
    } else
#endif
    {
      h2d_base = d2h_base = d2d_base = peer_base = HostMemcpySeconds(bytes, flags.iters);
      h2d_pageable_base = d2h_pageable_base = h2d_base;
    }

    // Through the engine.
    const double h2d = MedianOfTimed(flags.iters, [&] {
      TransferRequest r;
      r.host_source = HostSource{pinned, bytes, /*pinned=*/true, nullptr};
      r.dtype = DataType::kUint8;
      r.shape = {static_cast<int64_t>(bytes)};
      r.dst_device = 0;
      return transfer(std::move(r));
    });
    row(bytes, "h2d", h2d_base, h2d);
    const double h2d_pageable = MedianOfTimed(flags.iters, [&] {
      TransferRequest r;
      r.host_source = HostSource{pageable.data(), bytes, /*pinned=*/false, nullptr};
      r.dtype = DataType::kUint8;
      r.shape = {static_cast<int64_t>(bytes)};
      r.dst_device = 0;
      return transfer(std::move(r));
    });
    row(bytes, "h2d-pageable", h2d_pageable_base, h2d_pageable);
    const double d2h = MedianOfTimed(flags.iters, [&] {
      TransferRequest r;
      r.source_tensor = src.id;
      r.dst_device = kHostEndpoint;
      r.host_destination = HostDestination{pinned, bytes, /*pinned=*/true, nullptr};
      return transfer(std::move(r));
    });
    row(bytes, "d2h", d2h_base, d2h);
    const double d2h_pageable = MedianOfTimed(flags.iters, [&] {
      TransferRequest r;
      r.source_tensor = src.id;
      r.dst_device = kHostEndpoint;
      r.host_destination = HostDestination{pageable.data(), bytes, /*pinned=*/false, nullptr};
      return transfer(std::move(r));
    });
    row(bytes, "d2h-pageable", d2h_pageable_base, d2h_pageable);
    const double d2d = MedianOfTimed(flags.iters, [&] {
      TransferRequest r;
      r.source_tensor = src.id;
      r.dst_device = 0;
      return transfer(std::move(r));
    });
    row(bytes, "d2d", d2d_base, d2d);
    if (devices.size() > 1) {
      const double peer = MedianOfTimed(flags.iters, [&] {
        TransferRequest r;
        r.source_tensor = src.id;
        r.dst_device = 1;
        return transfer(std::move(r));
      });
      row(bytes, "peer 0->1", peer_base, peer);
    }
    devices[0]->FreePinnedHost(pinned);
    if (absl::Status st = memory->FreeTensor(src.id); !st.ok()) Die(st, "free");
  }
  return 0;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) {
  inferd::Flags flags;
  if (!inferd::ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: comm_bench [--max_mib=N] [--iters=N] [--limit=(0,1]] "
                 "[--host_devices=N] [--copy_threads=N]\n");
    return 2;
  }
  return inferd::Run(flags);
}
