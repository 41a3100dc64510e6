#include "core/device/host_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/tensor/dtype_dispatch.h"

namespace inferd {
namespace {

using Half = Fp16Bits;
using BHalf = Bf16Bits;

template <typename T> float ToF(T v) { return static_cast<float>(v); }
inline float ToF(Half v) { return HalfToFloat(v.bits); }
inline float ToF(BHalf v) { return Bf16ToFloat(v.bits); }

// Converts a double to T: round-to-nearest-even and saturate for integers.
template <typename T>
T FromDouble(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else if constexpr (std::is_same_v<T, Half>) {
    return Half{FloatToHalf(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<T, BHalf>) {
    return BHalf{FloatToBf16(static_cast<float>(v))};
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (std::isnan(v)) return T{0};
    double r = std::nearbyint(v);
    if (r <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (r >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(r);
  }
}

template <typename T> double ToD(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BHalf>) return ToF(v);
  else return static_cast<double>(v);
}

template <typename T>
T AddOne(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) return a || b;
  else if constexpr (std::is_same_v<T, Half>) return Half{FloatToHalf(ToF(a) + ToF(b))};
  else if constexpr (std::is_same_v<T, BHalf>) return BHalf{FloatToBf16(ToF(a) + ToF(b))};
  else return static_cast<T>(a + b);  // integers wrap, as on the GPU
}

template <typename T>
T ReduceOne(Kernels::ReduceOp op, T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    switch (op) {
      case Kernels::ReduceOp::kSum: case Kernels::ReduceOp::kMax: return a || b;
      case Kernels::ReduceOp::kProd: case Kernels::ReduceOp::kMin: return a && b;
    }
    return a;
  } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BHalf>) {
    float x = ToF(a), y = ToF(b), r = 0;
    switch (op) {
      case Kernels::ReduceOp::kSum: r = x + y; break;
      case Kernels::ReduceOp::kProd: r = x * y; break;
      case Kernels::ReduceOp::kMin: r = std::fmin(x, y); break;
      case Kernels::ReduceOp::kMax: r = std::fmax(x, y); break;
    }
    if constexpr (std::is_same_v<T, Half>) return Half{FloatToHalf(r)};
    else return BHalf{FloatToBf16(r)};
  } else {
    switch (op) {
      case Kernels::ReduceOp::kSum: return static_cast<T>(a + b);
      case Kernels::ReduceOp::kProd: return static_cast<T>(a * b);
      case Kernels::ReduceOp::kMin: return std::min(a, b);
      case Kernels::ReduceOp::kMax: return std::max(a, b);
    }
    return a;
  }
}

absl::Status Unsupported(const char* op, DataType dtype) {
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": datatype ", DataTypeName(dtype), " is not supported"));
}

class HostKernels final : public Kernels {
 public:
  absl::Status Add(Stream& stream, DataType dtype, const void* a, const void* b, void* out,
                   size_t n) override {
    absl::Status st;
    bool ok = DispatchNumeric(dtype, [&](auto tag) {
      using T = decltype(tag);
      st = EnqueueOnHostStream(stream, [a, b, out, n]() mutable {
        const T* x = static_cast<const T*>(a);
        const T* y = static_cast<const T*>(b);
        T* z = static_cast<T*>(out);
        for (size_t i = 0; i < n; ++i) z[i] = AddOne<T>(x[i], y[i]);
        return absl::OkStatus();
      });
    });
    return ok ? st : Unsupported("add", dtype);
  }

  absl::Status Scale(Stream& stream, DataType dtype, const void* in, double factor, void* out,
                     size_t n) override {
    absl::Status st;
    bool ok = DispatchNumeric(dtype, [&](auto tag) {
      using T = decltype(tag);
      st = EnqueueOnHostStream(stream, [in, factor, out, n]() mutable {
        const T* x = static_cast<const T*>(in);
        T* z = static_cast<T*>(out);
        if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BHalf>) {
          const float f = static_cast<float>(factor);
          for (size_t i = 0; i < n; ++i) z[i] = FromDouble<T>(ToF(x[i]) * f);
        } else {
          for (size_t i = 0; i < n; ++i) z[i] = FromDouble<T>(ToD(x[i]) * factor);
        }
        return absl::OkStatus();
      });
    });
    return ok ? st : Unsupported("scale", dtype);
  }

  absl::Status Reduce(Stream& stream, DataType dtype, ReduceOp op, const void* in, void* inout,
                      size_t n) override {
    absl::Status st;
    bool ok = DispatchNumeric(dtype, [&](auto tag) {
      using T = decltype(tag);
      st = EnqueueOnHostStream(stream, [op, in, inout, n]() mutable {
        const T* x = static_cast<const T*>(in);
        T* z = static_cast<T*>(inout);
        for (size_t i = 0; i < n; ++i) z[i] = ReduceOne<T>(op, z[i], x[i]);
        return absl::OkStatus();
      });
    });
    return ok ? st : Unsupported("reduce", dtype);
  }

  absl::Status DivideBy(Stream& stream, DataType dtype, void* inout, uint64_t divisor,
                        size_t n) override {
    if (divisor == 0) return absl::InvalidArgumentError("divide: divisor is 0");
    if (dtype == DataType::kBool) return Unsupported("divide", dtype);
    absl::Status st;
    bool ok = DispatchNumeric(dtype, [&](auto tag) {
      using T = decltype(tag);
      st = EnqueueOnHostStream(stream, [inout, divisor, n]() mutable {
        T* z = static_cast<T*>(inout);
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          for (size_t i = 0; i < n; ++i) z[i] = static_cast<T>(z[i] / static_cast<T>(divisor));
        } else {
          const double d = static_cast<double>(divisor);
          for (size_t i = 0; i < n; ++i) z[i] = FromDouble<T>(ToD(z[i]) / d);
        }
        return absl::OkStatus();
      });
    });
    return ok ? st : Unsupported("divide", dtype);
  }
};

}  // namespace

std::unique_ptr<Kernels> NewHostKernels() { return std::make_unique<HostKernels>(); }

}  // namespace inferd
