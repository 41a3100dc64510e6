#include "core/device/cuda/cuda_kernels.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/device/cuda/cuda_kernel_launch.h"
#include "core/device/cuda/cuda_status.h"
#include "core/device/cuda/cuda_stream.h"
#include "core/device/cuda/elementwise_ops.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

bool IsNumeric(DataType dtype) { return dtype != DataType::kBytes && DataTypeSize(dtype) > 0; }

absl::Status Unsupported(const char* op, DataType dtype) {
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": datatype ", DataTypeName(dtype), " is not supported"));
}

// Returns the CUDA stream behind `stream`, or INVALID_ARGUMENT.
absl::StatusOr<CudaStream*> AsCudaStream(const char* op, Stream& stream) {
  auto* cuda = dynamic_cast<CudaStream*>(&stream);
  if (cuda == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": stream ", stream.id(), " of device ",
                                                   stream.device().index(),
                                                   " is not a CUDA stream"));
  }
  return cuda;
}

// Checks that every pointer is non-null and aligned to the element size (a
// misaligned access would be a sticky kernel fault).
absl::Status CheckPointers(const char* op, DataType dtype, std::initializer_list<const void*> ptrs) {
  const uintptr_t align = DataTypeSize(dtype);
  for (const void* p : ptrs) {
    if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat(op, ": null pointer"));
    if (reinterpret_cast<uintptr_t>(p) % align != 0) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": pointer 0x", absl::Hex(reinterpret_cast<uintptr_t>(p)), " is not aligned to ",
                                                     align, " bytes for ",
                                                     DataTypeName(dtype)));
    }
  }
  return absl::OkStatus();
}

// True when `divisor` converted to the integer element type is 0 (the host
// kernels would divide by zero).
bool DivisorVanishes(DataType dtype, uint64_t divisor) {
  switch (dtype) {
    case DataType::kUint8: case DataType::kInt8: return static_cast<uint8_t>(divisor) == 0;
    case DataType::kUint16: case DataType::kInt16: return static_cast<uint16_t>(divisor) == 0;
    case DataType::kUint32: case DataType::kInt32: return static_cast<uint32_t>(divisor) == 0;
    default: return divisor == 0;
  }
}

// Runs `launch` with the stream's device current and converts its result.
template <typename Launch>
absl::Status LaunchOn(CudaStream& stream, const char* op, Launch&& launch) {
  ScopedCudaDevice guard(stream.ordinal());
  RETURN_IF_ERROR(guard.status(stream.device_index()));
  return stream.CheckEnqueue(launch(stream.cuda_stream()), absl::StrCat(op, " kernel launch"));
}

class CudaKernels final : public Kernels {
 public:
  absl::Status Add(Stream& stream, DataType dtype, const void* a, const void* b, void* out,
                   size_t n) override {
    if (!IsNumeric(dtype)) return Unsupported("add", dtype);
    ASSIGN_OR_RETURN(CudaStream * s, AsCudaStream("add", stream));
    if (n == 0) return absl::OkStatus();
    RETURN_IF_ERROR(CheckPointers("add", dtype, {a, b, out}));
    return LaunchOn(*s, "add", [&](cudaStream_t cs) {
      return cuda_launch::Add(dtype, a, b, out, n, cs);
    });
  }

  absl::Status Scale(Stream& stream, DataType dtype, const void* in, double factor, void* out,
                     size_t n) override {
    if (!IsNumeric(dtype)) return Unsupported("scale", dtype);
    ASSIGN_OR_RETURN(CudaStream * s, AsCudaStream("scale", stream));
    if (n == 0) return absl::OkStatus();
    RETURN_IF_ERROR(CheckPointers("scale", dtype, {in, out}));
    return LaunchOn(*s, "scale", [&](cudaStream_t cs) {
      return cuda_launch::Scale(dtype, in, factor, out, n, cs);
    });
  }

  absl::Status Reduce(Stream& stream, DataType dtype, ReduceOp op, const void* in, void* inout,
                      size_t n) override {
    if (!IsNumeric(dtype)) return Unsupported("reduce", dtype);
    ASSIGN_OR_RETURN(CudaStream * s, AsCudaStream("reduce", stream));
    if (n == 0) return absl::OkStatus();
    RETURN_IF_ERROR(CheckPointers("reduce", dtype, {in, inout}));
    elementwise::ReduceKind kind = elementwise::ReduceKind::kSum;
    switch (op) {
      case ReduceOp::kSum: kind = elementwise::ReduceKind::kSum; break;
      case ReduceOp::kProd: kind = elementwise::ReduceKind::kProd; break;
      case ReduceOp::kMin: kind = elementwise::ReduceKind::kMin; break;
      case ReduceOp::kMax: kind = elementwise::ReduceKind::kMax; break;
    }
    return LaunchOn(*s, "reduce", [&](cudaStream_t cs) {
      return cuda_launch::Reduce(dtype, kind, in, inout, n, cs);
    });
  }

  absl::Status DivideBy(Stream& stream, DataType dtype, void* inout, uint64_t divisor,
                        size_t n) override {
    if (divisor == 0) return absl::InvalidArgumentError("divide: divisor is 0");
    if (dtype == DataType::kBool || !IsNumeric(dtype)) return Unsupported("divide", dtype);
    if (DivisorVanishes(dtype, divisor)) {
      return absl::InvalidArgumentError(absl::StrCat("divide: divisor ", divisor, " is 0 as ",
                                                     DataTypeName(dtype)));
    }
    ASSIGN_OR_RETURN(CudaStream * s, AsCudaStream("divide", stream));
    if (n == 0) return absl::OkStatus();
    RETURN_IF_ERROR(CheckPointers("divide", dtype, {inout}));
    return LaunchOn(*s, "divide", [&](cudaStream_t cs) {
      return cuda_launch::DivideBy(dtype, inout, divisor, n, cs);
    });
  }
};

}  // namespace

std::unique_ptr<Kernels> NewCudaKernels() { return std::make_unique<CudaKernels>(); }

}  // namespace inferd
