// Helpers to build KServe v2 requests and read responses: raw input
// tensors from typed values, text forms for the command line.
#ifndef INFERD_CLIENTS_CPP_TENSOR_HELPERS_H_
#define INFERD_CLIENTS_CPP_TENSOR_HELPERS_H_

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor/dtype.h"
#include "inference/grpc_service.pb.h"

namespace inferd {

// Appends an input with raw contents (the request must use raw for all).
void AddRawInput(inference::ModelInferRequest* request, const std::string& name, DataType dtype,
                 const std::vector<int64_t>& shape, std::string bytes);

template <typename T>
std::string ToBytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

template <typename T>
std::vector<T> FromBytes(const std::string& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

// Serializes BYTES elements (4-byte little-endian length + bytes each).
std::string EncodeBytesElements(const std::vector<std::string>& elements);

// Parses comma-separated text values of `dtype` into raw bytes.
absl::StatusOr<std::string> EncodeValues(DataType dtype, absl::string_view csv);
// Formats raw bytes of `dtype` as comma-separated text, at most `max` values.
std::string FormatValues(DataType dtype, const std::string& raw, size_t max = 64);

// Parses an --input spec "NAME:DTYPE:D0xD1x...:v1,v2,..." and appends it
// (raw) to `request`. INVALID_ARGUMENT naming the part that is wrong.
absl::Status AddInputSpec(absl::string_view spec, inference::ModelInferRequest* request);

}  // namespace inferd

#endif  // INFERD_CLIENTS_CPP_TENSOR_HELPERS_H_
