// Helpers shared by the model-layer tests: a scratch folder, file writing,
// tensor byte encoding, and an InferResponder that collects outputs.
#ifndef INFERD_TESTS_CORE_MODELS_MODEL_TEST_UTIL_H_
#define INFERD_TESTS_CORE_MODELS_MODEL_TEST_UTIL_H_

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "core/infer/infer_request.h"
#include "core/tensor/dtype.h"
#include "gtest/gtest.h"

namespace inferd::testing_models {

// A fresh folder under the test temp dir, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = ::testing::TempDir() + "inferd_models_XXXXXX";
    char* made = ::mkdtemp(templ.data());
    EXPECT_NE(made, nullptr);
    path_ = std::filesystem::canonical(templ).string();
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Encodes floats as `dtype` elements (fp32, fp16 or bf16).
inline std::string Encode(DataType dtype, const std::vector<float>& v) {
  std::string out;
  for (float f : v) {
    if (dtype == DataType::kFp32) {
      char b[4];
      std::memcpy(b, &f, 4);
      out.append(b, 4);
    } else {
      const uint16_t h = dtype == DataType::kFp16 ? FloatToHalf(f) : FloatToBf16(f);
      out.push_back(static_cast<char>(h & 0xff));
      out.push_back(static_cast<char>(h >> 8));
    }
  }
  return out;
}

inline std::vector<float> Decode(DataType dtype, const void* data, size_t n) {
  std::vector<float> out(n);
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == DataType::kFp32) {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else {
      const uint16_t h = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
      out[i] = dtype == DataType::kFp16 ? HalfToFloat(h) : Bf16ToFloat(h);
    }
  }
  return out;
}

// Collects the outputs and the final status of one request.
class CollectingResponder final : public InferResponder {
 public:
  void* AllocateOutput(int index, const TensorSpec&, const TensorDesc& desc) override {
    if (outputs.size() <= static_cast<size_t>(index)) outputs.resize(index + 1);
    outputs[index].assign(desc.byte_size, '\0');
    descs.resize(outputs.size());
    descs[index] = desc;
    return outputs[index].data();
  }
  void Complete(absl::Status s) override {
    status = std::move(s);
    done.Notify();
  }
  bool HostOutputsPinned() const override { return pinned_outputs; }

  bool pinned_outputs = false;  // claims its output memory is pinned
  std::vector<std::string> outputs;
  std::vector<TensorDesc> descs;
  absl::Status status;
  absl::Notification done;
};

}  // namespace inferd::testing_models

#endif  // INFERD_TESTS_CORE_MODELS_MODEL_TEST_UTIL_H_
