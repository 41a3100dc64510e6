// Grid-stride elementwise kernels; the per-element math is elementwise_ops.h.
#include <cuda_runtime.h>

#include <type_traits>

#include "core/device/cuda/cuda_kernel_launch.h"
#include "core/device/cuda/elementwise_ops.h"
#include "core/tensor/dtype_dispatch.h"

namespace inferd::cuda_launch {
namespace {

using elementwise::BHalf;
using elementwise::Half;
using elementwise::ReduceKind;

constexpr unsigned kThreads = 256;
constexpr size_t kMaxBlocks = 8192;  // enough to fill any current GPU

dim3 Blocks(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return dim3(static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

__device__ inline size_t FirstIndex() {
  return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline size_t GridStride() { return static_cast<size_t>(gridDim.x) * blockDim.x; }

template <typename T>
__global__ void AddKernel(const T* a, const T* b, T* out, size_t n) {
  for (size_t i = FirstIndex(); i < n; i += GridStride()) {
    out[i] = elementwise::AddOne<T>(a[i], b[i]);
  }
}

template <typename T>
__global__ void ScaleKernel(const T* in, elementwise::ScaleFactor<T> factor, T* out, size_t n) {
  for (size_t i = FirstIndex(); i < n; i += GridStride()) {
    out[i] = elementwise::ScaleOne<T>(in[i], factor);
  }
}

template <typename T, ReduceKind kOp>
__global__ void ReduceKernel(const T* in, T* inout, size_t n) {
  for (size_t i = FirstIndex(); i < n; i += GridStride()) {
    inout[i] = elementwise::ReduceOne<T>(kOp, inout[i], in[i]);
  }
}

template <typename T>
__global__ void DivideKernel(T* inout, uint64_t divisor, size_t n) {
  for (size_t i = FirstIndex(); i < n; i += GridStride()) {
    inout[i] = elementwise::DivideOne<T>(inout[i], divisor);
  }
}

// Keeps kernel arguments out of template deduction.
template <typename T>
struct Identity {
  using type = T;
};

template <typename... Args>
cudaError_t Launch(void (*kernel)(Args...), size_t n, cudaStream_t stream,
                   typename Identity<Args>::type... args) {
  void* params[] = {static_cast<void*>(&args)...};
  return cudaLaunchKernel(reinterpret_cast<const void*>(kernel), Blocks(n), dim3(kThreads),
                          params, 0, stream);
}

}  // namespace

cudaError_t Add(DataType dtype, const void* a, const void* b, void* out, size_t n,
                cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;
  DispatchNumeric(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = Launch(&AddKernel<T>, n, stream, static_cast<const T*>(a), static_cast<const T*>(b),
                 static_cast<T*>(out), n);
  });
  return err;
}

cudaError_t Scale(DataType dtype, const void* in, double factor, void* out, size_t n,
                  cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;
  DispatchNumeric(dtype, [&](auto tag) {
    using T = decltype(tag);
    using F = elementwise::ScaleFactor<T>;
    err = Launch(&ScaleKernel<T>, n, stream, static_cast<const T*>(in), static_cast<F>(factor),
                 static_cast<T*>(out), n);
  });
  return err;
}

cudaError_t Reduce(DataType dtype, ReduceKind op, const void* in, void* inout, size_t n,
                   cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;
  DispatchNumeric(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in);
    T* z = static_cast<T*>(inout);
    switch (op) {
      case ReduceKind::kSum: err = Launch(&ReduceKernel<T, ReduceKind::kSum>, n, stream, x, z, n); break;
      case ReduceKind::kProd: err = Launch(&ReduceKernel<T, ReduceKind::kProd>, n, stream, x, z, n); break;
      case ReduceKind::kMin: err = Launch(&ReduceKernel<T, ReduceKind::kMin>, n, stream, x, z, n); break;
      case ReduceKind::kMax: err = Launch(&ReduceKernel<T, ReduceKind::kMax>, n, stream, x, z, n); break;
    }
  });
  return err;
}

cudaError_t DivideBy(DataType dtype, void* inout, uint64_t divisor, size_t n,
                     cudaStream_t stream) {
  if (dtype == DataType::kBool) return cudaErrorInvalidValue;
  cudaError_t err = cudaErrorInvalidValue;
  DispatchNumeric(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) {
      err = Launch(&DivideKernel<T>, n, stream, static_cast<T*>(inout), divisor, n);
    }
  });
  return err;
}

}  // namespace inferd::cuda_launch
