// The torch backend tests' fixtures: make_torch_fixtures.py (run with the
// Python whose torch matches the backend's libtorch) writes a model
// repository of TorchScript models and, per model, an input batch with
// torch's outputs. ctest runs it once (FIXTURES_SETUP); a test binary run
// by hand runs it itself when the folder is missing.
#ifndef INFERD_TESTS_BACKENDS_TORCH_TORCH_FIXTURES_H_
#define INFERD_TESTS_BACKENDS_TORCH_TORCH_FIXTURES_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/tensor/dtype.h"
#include "gtest/gtest.h"

namespace inferd::torch_testing {

// $`name` when set, else `built_in` (the build's value): a test binary
// carried to another machine is pointed at that machine's paths.
inline std::string EnvOr(const char* name, const char* built_in) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : built_in;
}

// The fixtures folder, made on first use; fails the test when the Python
// with torch that CMake found cannot make it.
inline std::string FixturesDir() {
  const std::string dir = EnvOr("INFERD_TORCH_FIXTURES_DIR", INFERD_TORCH_FIXTURES_DIR);
  if (!std::filesystem::exists(dir + "/.done")) {
    const std::string cmd =
        absl::StrCat("'", EnvOr("INFERD_TORCH_PYTHON", INFERD_TORCH_PYTHON), "' '",
                     EnvOr("INFERD_TORCH_FIXTURES_SCRIPT", INFERD_TORCH_FIXTURES_SCRIPT), "' '",
                     dir, "' >/dev/null 2>&1");
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "fixture generation failed: " << cmd;
  }
  return dir;
}

// One tensor of a case: its bytes as torch wrote them.
struct CaseTensor {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A model's input batch and torch's outputs for it.
struct ModelCase {
  std::vector<CaseTensor> inputs;
  std::vector<CaseTensor> outputs;
};

// Reads the case in folder `dir` (manifest.txt and the .raw files).
inline ModelCase ReadCaseDir(const std::string& dir) {
  ModelCase c;
  std::ifstream manifest(dir + "/manifest.txt");
  std::string line;
  while (std::getline(manifest, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() != 4) continue;
    CaseTensor t;
    t.name = f[1];
    t.dtype = ParseDataType(f[2]).value_or(DataType::kInvalid);
    for (absl::string_view d : absl::StrSplit(f[3], ',')) {
      int64_t v = 0;
      EXPECT_TRUE(absl::SimpleAtoi(d, &v)) << line;
      t.shape.push_back(v);
    }
    std::ifstream raw(absl::StrCat(dir, "/", t.name, ".raw"), std::ios::binary);
    t.bytes.assign(std::istreambuf_iterator<char>(raw), std::istreambuf_iterator<char>());
    (f[0] == "in" ? c.inputs : c.outputs).push_back(std::move(t));
  }
  EXPECT_FALSE(c.inputs.empty() || c.outputs.empty()) << "no case in " << dir;
  return c;
}

// The fixtures' case of `model`.
inline ModelCase ReadCase(const std::string& model) {
  return ReadCaseDir(absl::StrCat(FixturesDir(), "/cases/", model));
}

// Returns max |got - want| / max |want| for floating point tensors (NaN
// or infinity anywhere counts as a total mismatch), and 0 or 1 (equal or
// not) for the others; `got` holds want.bytes.size() bytes.
inline double RelativeError(const CaseTensor& want, const std::string& got) {
  if (got.size() != want.bytes.size()) return 1e30;
  const DataType t = want.dtype;
  if (t != DataType::kFp16 && t != DataType::kBf16 && t != DataType::kFp32 &&
      t != DataType::kFp64) {
    return got == want.bytes ? 0.0 : 1.0;
  }
  const size_t size = DataTypeSize(t);
  const size_t n = got.size() / size;
  auto at = [&](const std::string& b, size_t i) -> double {
    const char* p = b.data() + size * i;
    if (t == DataType::kFp64) {
      double d;
      std::memcpy(&d, p, 8);
      return d;
    }
    if (t == DataType::kFp32) {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, p, 2);
    return t == DataType::kFp16 ? HalfToFloat(h) : Bf16ToFloat(h);
  };
  double max_abs = 0;
  double max_err = 0;
  for (size_t i = 0; i < n; ++i) {
    const double w = at(want.bytes, i);
    const double g = at(got, i);
    if (!std::isfinite(w) || !std::isfinite(g)) return 1e30;
    max_abs = std::max(max_abs, std::fabs(w));
    max_err = std::max(max_err, std::fabs(w - g));
  }
  return max_abs == 0 ? max_err : max_err / max_abs;
}

// Copies folder `from` to `to` (recursively).
inline void CopyFolder(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive |
                                      std::filesystem::copy_options::overwrite_existing);
}

}  // namespace inferd::torch_testing

#endif  // INFERD_TESTS_BACKENDS_TORCH_TORCH_FIXTURES_H_
