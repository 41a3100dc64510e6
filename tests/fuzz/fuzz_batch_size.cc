// The memory engine's GetOptimalBatchSize (Memory.GetOptimalBatchSize's
// request) over one 64 MiB host device: any per-sample sizes, model size
// and limit must give a status, never overflow.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/device/host_device.h"
#include "core/memory/memory_engine.h"
#include "core/util/clock.h"
#include "prometheus/registry.h"

namespace {

struct Fixture {
  Fixture() {
    inferd::HostDeviceOptions ho;
    ho.capacity_bytes = 64ull << 20;
    device = std::make_unique<inferd::HostDevice>(ho);
    inferd::MemoryEngineOptions o;
    o.pool_size_mb = 0;
    o.max_pool_fraction = 1.0;
    o.enable_monitoring = false;
    engine = std::move(inferd::MemoryEngine::Create(o, {device.get()}, &clock, registry)).value();
  }
  inferd::FakeClock clock;
  prometheus::Registry registry;
  std::unique_ptr<inferd::HostDevice> device;
  std::unique_ptr<inferd::MemoryEngine> engine;
};

template <typename T>
T Take(const uint8_t*& data, size_t& size) {
  T v{};
  const size_t n = size < sizeof(T) ? size : sizeof(T);
  std::memcpy(&v, data, n);
  data += n;
  size -= n;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture();
  inferd::BatchSizeRequest r;
  r.device = Take<uint8_t>(data, size) % 3 - 1;
  r.model_size_mb = Take<double>(data, size);
  r.dtype = static_cast<inferd::DataType>(Take<uint8_t>(data, size) % 16);
  r.output_bytes_per_sample = Take<uint64_t>(data, size);
  r.activation_bytes_per_sample = Take<uint64_t>(data, size);
  r.max_batch_size = Take<int64_t>(data, size);
  const int dims = Take<uint8_t>(data, size) % 8;
  for (int i = 0; i < dims; ++i) r.input_shape.push_back(Take<int64_t>(data, size));
  (void)f->engine->GetOptimalBatchSize(r);
  return 0;
}
