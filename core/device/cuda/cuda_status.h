// Helpers for calling the CUDA runtime: conversion of cudaError_t into
// absl::Status (naming the operation, the device and CUDA's own message) and
// a scoped guard that makes a device current for the calling thread.
#ifndef INFERD_CORE_DEVICE_CUDA_CUDA_STATUS_H_
#define INFERD_CORE_DEVICE_CUDA_CUDA_STATUS_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace inferd {

// Returns OK for cudaSuccess, else "<op> on device <index>: <CUDA's error
// string> (<error name>)" with the canonical code a client should see:
// RESOURCE_EXHAUSTED for out-of-memory, INVALID_ARGUMENT for bad values and
// handles, UNAVAILABLE for a missing device or driver, INTERNAL otherwise.
absl::Status CudaStatus(cudaError_t err, absl::string_view op, int device_index);

// True for errors that corrupt the CUDA context (a kernel fault, say): every
// later call on the device fails with them, and host functions enqueued with
// cudaLaunchHostFunc never run.
bool IsStickyCudaError(cudaError_t err);

// Makes CUDA device `ordinal` current for the calling thread and restores the
// previous one on destruction. Not thread-safe (a thread-local setting);
// use on the stack only.
class ScopedCudaDevice {
 public:
  explicit ScopedCudaDevice(int ordinal);
  ~ScopedCudaDevice();
  ScopedCudaDevice(const ScopedCudaDevice&) = delete;
  ScopedCudaDevice& operator=(const ScopedCudaDevice&) = delete;

  // Returns the failure to switch devices, if any, as CudaStatus does.
  absl::Status status(int device_index) const {
    return CudaStatus(error_, "cudaSetDevice", device_index);
  }

 private:
  int previous_ = -1;  // -1: nothing to restore
  cudaError_t error_ = cudaSuccess;
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_CUDA_STATUS_H_
