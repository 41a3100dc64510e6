// gen_demo_mlp: writes an mlp model folder (model.safetensors + config.yaml)
// with deterministic weights, laid out as torch.nn.Sequential(Linear, act,
// Linear, act, ..., Linear).state_dict() would save them ("0.weight",
// "0.bias", "2.weight", ...). The build runs it to make the demo model;
// benchmarks run it for bigger ones:
//
//   gen_demo_mlp --out DIR [--name NAME] [--sizes 64,256,256,16]
//                [--activation relu|gelu|gelu_tanh|none] [--dtype fp32|fp16|bf16]
//                [--max-batch-size 64] [--seed 1]
//
// Weights and biases are uniform in [-1/sqrt(in), 1/sqrt(in)] (nn.Linear's
// default range) from splitmix64, so the output is identical everywhere.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/models/safetensors.h"
#include "core/tensor/dtype.h"

namespace {

struct Options {
  std::string out;
  std::string name;
  std::vector<int64_t> sizes = {64, 256, 256, 16};
  std::string activation = "relu";
  std::string dtype = "fp32";
  int64_t max_batch_size = 64;
  uint64_t seed = 1;
};

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [-bound, bound) with 24 random bits.
float Uniform(uint64_t* state, float bound) {
  const float u = static_cast<float>(SplitMix64(state) >> 40) * (1.0f / 16777216.0f);
  return (2.0f * u - 1.0f) * bound;
}

std::string Encode(inferd::DataType dtype, const std::vector<float>& v) {
  std::string out;
  out.reserve(v.size() * inferd::DataTypeSize(dtype));
  for (float f : v) {
    if (dtype == inferd::DataType::kFp32) {
      char b[4];
      std::memcpy(b, &f, 4);
      out.append(b, 4);
    } else {
      const uint16_t h =
          dtype == inferd::DataType::kFp16 ? inferd::FloatToHalf(f) : inferd::FloatToBf16(f);
      out.push_back(static_cast<char>(h & 0xff));
      out.push_back(static_cast<char>(h >> 8));
    }
  }
  return out;
}

constexpr char kUsage[] =
    "usage: gen_demo_mlp --out DIR [--name NAME] [--sizes 64,256,256,16] "
    "[--activation relu|gelu|gelu_tanh|none] [--dtype fp32|fp16|bf16] [--max-batch-size N] "
    "[--seed N]\n"
    "Writes a random mlp model (config.yaml and model.safetensors) into DIR, a\n"
    "model folder of a model repository; NAME defaults to DIR's last part.\n";

int Usage(const std::string& problem) {
  std::fprintf(stderr, "gen_demo_mlp: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

bool WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) return Usage(absl::StrCat(flag, " needs a value"));
    const std::string value = argv[++i];
    if (flag == "--out") {
      o.out = value;
    } else if (flag == "--name") {
      o.name = value;
    } else if (flag == "--sizes") {
      o.sizes.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int64_t n = 0;
        if (!absl::SimpleAtoi(part, &n) || n < 1 || n > (1 << 20)) {
          return Usage(absl::StrCat("--sizes: bad size '", part, "'"));
        }
        o.sizes.push_back(n);
      }
      if (o.sizes.size() < 2) return Usage("--sizes needs at least two sizes");
    } else if (flag == "--activation") {
      if (value != "relu" && value != "gelu" && value != "gelu_tanh" && value != "none") {
        return Usage("--activation must be relu, gelu, gelu_tanh or none");
      }
      o.activation = value;
    } else if (flag == "--dtype") {
      if (value != "fp32" && value != "fp16" && value != "bf16") {
        return Usage("--dtype must be fp32, fp16 or bf16");
      }
      o.dtype = value;
    } else if (flag == "--max-batch-size") {
      if (!absl::SimpleAtoi(value, &o.max_batch_size) || o.max_batch_size < 1 ||
          o.max_batch_size > (1 << 20)) {
        return Usage("--max-batch-size must be in [1, 1048576]");
      }
    } else if (flag == "--seed") {
      if (!absl::SimpleAtoi(value, &o.seed)) return Usage("--seed must be an integer");
    } else {
      return Usage(absl::StrCat("unknown flag ", flag));
    }
  }
  if (o.out.empty()) return Usage("--out is required");
  const std::filesystem::path dir(o.out);
  if (o.name.empty()) o.name = dir.filename().string();
  const inferd::DataType dtype = o.dtype == "fp16"   ? inferd::DataType::kFp16
                                 : o.dtype == "bf16" ? inferd::DataType::kBf16
                                                     : inferd::DataType::kFp32;
  const std::string wire_dtype(inferd::DataTypeName(dtype));

  uint64_t state = o.seed;
  std::vector<std::string> blobs;
  std::vector<inferd::SafetensorsEntry> entries;
  std::string layers_yaml;
  const size_t num_layers = o.sizes.size() - 1;
  blobs.reserve(2 * num_layers);
  for (size_t l = 0; l < num_layers; ++l) {
    const int64_t in = o.sizes[l];
    const int64_t out = o.sizes[l + 1];
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    std::vector<float> w(static_cast<size_t>(in * out));
    for (float& v : w) v = Uniform(&state, bound);
    std::vector<float> b(static_cast<size_t>(out));
    for (float& v : b) v = Uniform(&state, bound);
    const std::string prefix = absl::StrCat(2 * l);  // Sequential index: Linear, act, Linear...
    blobs.push_back(Encode(dtype, w));
    entries.push_back({prefix + ".weight", dtype, {out, in}, blobs.back()});
    blobs.push_back(Encode(dtype, b));
    entries.push_back({prefix + ".bias", dtype, {out}, blobs.back()});
    const bool last = l + 1 == num_layers;
    absl::StrAppend(&layers_yaml, "    - {weight: ", prefix, ".weight, bias: ", prefix,
                    ".bias, activation: ", last ? "none" : o.activation, "}\n");
  }
  absl::StatusOr<std::string> file = inferd::SerializeSafetensors(
      entries, {{"format", "pt"}, {"generator", "inferd gen_demo_mlp"}});
  if (!file.ok()) return Usage(std::string(file.status().message()));

  const std::string config = absl::StrCat(
      "# Generated by gen_demo_mlp (sizes ", absl::StrJoin(o.sizes, ","), ", seed ", o.seed,
      ").\nname: ", o.name, "\nversion: \"1\"\nbackend: mlp\nmax_batch_size: ", o.max_batch_size,
      "\ndynamic_batching:\n  max_queue_delay_us: 200\n"
      "inputs:\n  - {name: INPUT0, datatype: ", wire_dtype, ", dims: [-1, ", o.sizes.front(),
      "]}\noutputs:\n  - {name: OUTPUT0, datatype: ", wire_dtype, ", dims: [-1, ",
      o.sizes.back(), "]}\nmlp:\n  weights: model.safetensors\n  dtype: ", o.dtype,
      "\n  layers:\n", layers_yaml);

  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Usage(absl::StrCat("cannot create ", o.out, ": ", ec.message()));
  if (!WriteFile(dir / "model.safetensors", *file) || !WriteFile(dir / "config.yaml", config)) {
    return Usage(absl::StrCat("cannot write into ", o.out));
  }
  return 0;
}
