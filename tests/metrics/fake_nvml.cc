// A stand-in for libnvidia-ml.so.1 with the entry points inferd's Nvml
// loader resolves: one GPU at PCI bus id 00000000:01:00.0, 42 % busy,
// 123.456 W, 7,000,000.5 J. Built without FAKE_NVML_ENERGY it has neither
// nvmlDeviceGetPowerUsage nor nvmlDeviceGetTotalEnergyConsumption, as an
// older driver.
#include <cstring>

namespace {
struct nvmlDevice_st {
  int unused;
};
nvmlDevice_st the_gpu;
constexpr int kSuccess = 0;
constexpr int kNotFound = 6;  // NVML_ERROR_NOT_FOUND
}  // namespace

extern "C" {

struct FakeUtilization {
  unsigned int gpu;
  unsigned int memory;
};

int nvmlInit_v2() { return kSuccess; }
int nvmlShutdown() { return kSuccess; }
const char* nvmlErrorString(int rc) { return rc == kNotFound ? "Not Found" : "Unknown Error"; }

int nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id, nvmlDevice_st** device) {
  if (std::strcmp(bus_id, "00000000:01:00.0") != 0) return kNotFound;
  *device = &the_gpu;
  return kSuccess;
}

int nvmlDeviceGetUtilizationRates(nvmlDevice_st*, FakeUtilization* u) {
  u->gpu = 42;
  u->memory = 7;
  return kSuccess;
}

#ifdef FAKE_NVML_ENERGY
int nvmlDeviceGetPowerUsage(nvmlDevice_st*, unsigned int* milliwatts) {
  *milliwatts = 123456;
  return kSuccess;
}

int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_st*, unsigned long long* millijoules) {
  *millijoules = 7000000500ull;
  return kSuccess;
}
#endif

}  // extern "C"
