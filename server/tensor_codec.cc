#include "server/tensor_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace inferd {
namespace {

template <typename T, typename Repeated>
absl::Status Narrow(const Repeated& src, const std::string& field, const char* name,
                    uint64_t elements, std::string* out) {
  if (static_cast<uint64_t>(src.size()) != elements) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".", name, ": ", src.size(),
                                                   " values given, shape needs ", elements));
  }
  out->resize(elements * sizeof(T));
  T* dst = reinterpret_cast<T*>(out->data());
  for (int i = 0; i < src.size(); ++i) dst[i] = static_cast<T>(src.Get(i));
  return absl::OkStatus();
}

int PopulatedFields(const inference::InferTensorContents& c) {
  return (c.bool_contents_size() > 0) + (c.int_contents_size() > 0) +
         (c.int64_contents_size() > 0) + (c.uint_contents_size() > 0) +
         (c.uint64_contents_size() > 0) + (c.fp32_contents_size() > 0) +
         (c.fp64_contents_size() > 0) + (c.bytes_contents_size() > 0);
}

}  // namespace

absl::Status DecodeTypedContents(const inference::InferTensorContents& c, DataType dtype,
                                 uint64_t elements, const std::string& field, std::string* out) {
  if (PopulatedFields(c) > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": more than one typed contents field is set"));
  }
  switch (dtype) {
    case DataType::kBool: return Narrow<uint8_t>(c.bool_contents(), field, "bool_contents", elements, out);
    case DataType::kInt8: return Narrow<int8_t>(c.int_contents(), field, "int_contents", elements, out);
    case DataType::kInt16: return Narrow<int16_t>(c.int_contents(), field, "int_contents", elements, out);
    case DataType::kInt32: return Narrow<int32_t>(c.int_contents(), field, "int_contents", elements, out);
    case DataType::kInt64: return Narrow<int64_t>(c.int64_contents(), field, "int64_contents", elements, out);
    case DataType::kUint8: return Narrow<uint8_t>(c.uint_contents(), field, "uint_contents", elements, out);
    case DataType::kUint16: return Narrow<uint16_t>(c.uint_contents(), field, "uint_contents", elements, out);
    case DataType::kUint32: return Narrow<uint32_t>(c.uint_contents(), field, "uint_contents", elements, out);
    case DataType::kUint64: return Narrow<uint64_t>(c.uint64_contents(), field, "uint64_contents", elements, out);
    case DataType::kFp32: return Narrow<float>(c.fp32_contents(), field, "fp32_contents", elements, out);
    case DataType::kFp64: return Narrow<double>(c.fp64_contents(), field, "fp64_contents", elements, out);
    case DataType::kBytes: {
      if (static_cast<uint64_t>(c.bytes_contents_size()) != elements) {
        return absl::InvalidArgumentError(absl::StrCat(field, ".bytes_contents: ",
                                                       c.bytes_contents_size(),
                                                       " values given, shape needs ", elements));
      }
      out->clear();
      for (const std::string& s : c.bytes_contents()) {
        if (s.size() > 0xffffffffull) {
          return absl::InvalidArgumentError(absl::StrCat(field, ".bytes_contents: element too large"));
        }
        const uint32_t n = static_cast<uint32_t>(s.size());
        const char len[4] = {static_cast<char>(n), static_cast<char>(n >> 8),
                             static_cast<char>(n >> 16), static_cast<char>(n >> 24)};
        out->append(len, 4);
        out->append(s);
      }
      return absl::OkStatus();
    }
    case DataType::kFp16:
    case DataType::kBf16:
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": datatype ", DataTypeName(dtype),
          " has no typed contents field; send it in raw_input_contents"));
    case DataType::kInvalid:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": unsupported datatype"));
}

absl::Status EncodeTypedContents(DataType dtype, const std::string& raw,
                                 inference::InferTensorContents* c) {
  auto each = [&raw](auto tag, auto&& add) {
    using T = decltype(tag);
    const size_t n = raw.size() / sizeof(T);
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
      add(v);
    }
  };
  switch (dtype) {
    case DataType::kBool: each(uint8_t{}, [c](uint8_t v) { c->add_bool_contents(v != 0); }); break;
    case DataType::kInt8: each(int8_t{}, [c](int8_t v) { c->add_int_contents(v); }); break;
    case DataType::kInt16: each(int16_t{}, [c](int16_t v) { c->add_int_contents(v); }); break;
    case DataType::kInt32: each(int32_t{}, [c](int32_t v) { c->add_int_contents(v); }); break;
    case DataType::kInt64: each(int64_t{}, [c](int64_t v) { c->add_int64_contents(v); }); break;
    case DataType::kUint8: each(uint8_t{}, [c](uint8_t v) { c->add_uint_contents(v); }); break;
    case DataType::kUint16: each(uint16_t{}, [c](uint16_t v) { c->add_uint_contents(v); }); break;
    case DataType::kUint32: each(uint32_t{}, [c](uint32_t v) { c->add_uint_contents(v); }); break;
    case DataType::kUint64: each(uint64_t{}, [c](uint64_t v) { c->add_uint64_contents(v); }); break;
    case DataType::kFp32: each(float{}, [c](float v) { c->add_fp32_contents(v); }); break;
    case DataType::kFp64: each(double{}, [c](double v) { c->add_fp64_contents(v); }); break;
    case DataType::kBytes: {
      size_t off = 0;
      while (off + 4 <= raw.size()) {
        const auto* p = reinterpret_cast<const uint8_t*>(raw.data() + off);
        const uint32_t len = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
        off += 4;
        if (len > raw.size() - off) return absl::InvalidArgumentError("malformed BYTES tensor");
        c->add_bytes_contents(raw.substr(off, len));
        off += len;
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("datatype ", DataTypeName(dtype), " has no typed contents field"));
  }
  return absl::OkStatus();
}

}  // namespace inferd
