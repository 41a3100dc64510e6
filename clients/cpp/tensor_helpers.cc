#include "clients/cpp/tensor_helpers.h"

#include <cstdint>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace inferd {

void AddRawInput(inference::ModelInferRequest* request, const std::string& name, DataType dtype,
                 const std::vector<int64_t>& shape, std::string bytes) {
  auto* in = request->add_inputs();
  in->set_name(name);
  const absl::string_view dt = DataTypeName(dtype);
  in->set_datatype(dt.data(), dt.size());
  for (int64_t d : shape) in->add_shape(d);
  *request->add_raw_input_contents() = std::move(bytes);
}

std::string EncodeBytesElements(const std::vector<std::string>& elements) {
  std::string out;
  for (const auto& e : elements) {
    const uint32_t n = static_cast<uint32_t>(e.size());
    const char len[4] = {static_cast<char>(n), static_cast<char>(n >> 8),
                         static_cast<char>(n >> 16), static_cast<char>(n >> 24)};
    out.append(len, 4);
    out.append(e);
  }
  return out;
}

namespace {

template <typename T>
bool AppendInt(absl::string_view s, std::string* out) {
  if constexpr (std::is_signed_v<T>) {
    int64_t v;
    if (!absl::SimpleAtoi(s, &v) || v < std::numeric_limits<T>::min() ||
        v > std::numeric_limits<T>::max()) {
      return false;
    }
    T t = static_cast<T>(v);
    out->append(reinterpret_cast<const char*>(&t), sizeof(T));
  } else {
    uint64_t v;
    if (!absl::SimpleAtoi(s, &v) || v > std::numeric_limits<T>::max()) return false;
    T t = static_cast<T>(v);
    out->append(reinterpret_cast<const char*>(&t), sizeof(T));
  }
  return true;
}

template <typename T>
void AppendRaw(T v, std::string* out) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
T Load(const std::string& raw, size_t i) {
  T v;
  std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
  return v;
}

}  // namespace

absl::StatusOr<std::string> EncodeValues(DataType dtype, absl::string_view csv) {
  std::string out;
  if (csv.empty()) return out;
  if (dtype == DataType::kBytes) {
    std::vector<std::string> elems = absl::StrSplit(csv, ',');
    return EncodeBytesElements(elems);
  }
  for (absl::string_view s : absl::StrSplit(csv, ',')) {
    bool ok = true;
    double d = 0;
    switch (dtype) {
      case DataType::kBool:
        if (s == "true" || s == "1") AppendRaw<uint8_t>(1, &out);
        else if (s == "false" || s == "0") AppendRaw<uint8_t>(0, &out);
        else ok = false;
        break;
      case DataType::kInt8: ok = AppendInt<int8_t>(s, &out); break;
      case DataType::kInt16: ok = AppendInt<int16_t>(s, &out); break;
      case DataType::kInt32: ok = AppendInt<int32_t>(s, &out); break;
      case DataType::kInt64: ok = AppendInt<int64_t>(s, &out); break;
      case DataType::kUint8: ok = AppendInt<uint8_t>(s, &out); break;
      case DataType::kUint16: ok = AppendInt<uint16_t>(s, &out); break;
      case DataType::kUint32: ok = AppendInt<uint32_t>(s, &out); break;
      case DataType::kUint64: ok = AppendInt<uint64_t>(s, &out); break;
      case DataType::kFp16:
        ok = absl::SimpleAtod(s, &d);
        AppendRaw<uint16_t>(FloatToHalf(static_cast<float>(d)), &out);
        break;
      case DataType::kBf16:
        ok = absl::SimpleAtod(s, &d);
        AppendRaw<uint16_t>(FloatToBf16(static_cast<float>(d)), &out);
        break;
      case DataType::kFp32:
        ok = absl::SimpleAtod(s, &d);
        AppendRaw<float>(static_cast<float>(d), &out);
        break;
      case DataType::kFp64:
        ok = absl::SimpleAtod(s, &d);
        AppendRaw<double>(d, &out);
        break;
      default:
        ok = false;
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("value '", s, "' is not a valid ", DataTypeName(dtype)));
    }
  }
  return out;
}

std::string FormatValues(DataType dtype, const std::string& raw, size_t max) {
  std::string out;
  auto sep = [&out] {
    if (!out.empty()) out += ",";
  };
  if (dtype == DataType::kBytes) {
    size_t off = 0, n = 0;
    while (off + 4 <= raw.size() && n < max) {
      const auto* p = reinterpret_cast<const uint8_t*>(raw.data() + off);
      const uint32_t len = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
      off += 4;
      if (len > raw.size() - off) break;
      sep();
      out += raw.substr(off, len);
      off += len;
      ++n;
    }
    return out;
  }
  const size_t size = DataTypeSize(dtype);
  if (size == 0) return out;
  const size_t n = raw.size() / size;
  for (size_t i = 0; i < n && i < max; ++i) {
    sep();
    switch (dtype) {
      case DataType::kBool: out += Load<uint8_t>(raw, i) ? "true" : "false"; break;
      case DataType::kInt8: absl::StrAppend(&out, Load<int8_t>(raw, i)); break;
      case DataType::kInt16: absl::StrAppend(&out, Load<int16_t>(raw, i)); break;
      case DataType::kInt32: absl::StrAppend(&out, Load<int32_t>(raw, i)); break;
      case DataType::kInt64: absl::StrAppend(&out, Load<int64_t>(raw, i)); break;
      case DataType::kUint8: absl::StrAppend(&out, Load<uint8_t>(raw, i)); break;
      case DataType::kUint16: absl::StrAppend(&out, Load<uint16_t>(raw, i)); break;
      case DataType::kUint32: absl::StrAppend(&out, Load<uint32_t>(raw, i)); break;
      case DataType::kUint64: absl::StrAppend(&out, Load<uint64_t>(raw, i)); break;
      case DataType::kFp16: absl::StrAppend(&out, HalfToFloat(Load<uint16_t>(raw, i))); break;
      case DataType::kBf16: absl::StrAppend(&out, Bf16ToFloat(Load<uint16_t>(raw, i))); break;
      case DataType::kFp32: absl::StrAppend(&out, Load<float>(raw, i)); break;
      case DataType::kFp64: absl::StrAppend(&out, Load<double>(raw, i)); break;
      default: break;
    }
  }
  if (n > max) absl::StrAppend(&out, ",... (", n, " values)");
  return out;
}

absl::Status AddInputSpec(absl::string_view spec, inference::ModelInferRequest* request) {
  std::vector<absl::string_view> parts = absl::StrSplit(spec, absl::MaxSplits(':', 3));
  if (parts.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--input '", spec, "': expected NAME:DTYPE:SHAPE:VALUES, e.g. INPUT0:FP32:2x2:1,2,3,4"));
  }
  std::optional<DataType> dtype = ParseDataType(parts[1]);
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("--input '", spec, "': unknown datatype '", parts[1], "'"));
  }
  std::vector<int64_t> shape;
  if (!parts[2].empty()) {
    for (absl::string_view d : absl::StrSplit(parts[2], 'x')) {
      int64_t v;
      if (!absl::SimpleAtoi(d, &v) || v < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--input '", spec, "': bad dimension '", d, "' in shape"));
      }
      shape.push_back(v);
    }
  }
  absl::StatusOr<std::string> bytes = EncodeValues(*dtype, parts[3]);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--input '", spec, "': ", bytes.status().message()));
  }
  AddRawInput(request, std::string(parts[0]), *dtype, shape, *std::move(bytes));
  return absl::OkStatus();
}

}  // namespace inferd
