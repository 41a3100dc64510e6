// tensors: inferd.v1.Memory — allocate, upload (streamed in chunks),
// download, info, renew, free and list tensors by handle.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "clients/cpp/proto_text.h"
#include "clients/cpp/tensor_helpers.h"
#include "clients/cpp/tensor_stream.h"
#include "clients/inferctl/commands.h"
#include "core/tensor/dtype.h"
#include "google/protobuf/struct.pb.h"
#include "inferd/v1/memory.grpc.pb.h"

namespace inferd::inferctl {
namespace {

constexpr char kTensorsUsage[] =
    "tensors alloc DTYPE:SHAPE [--device=N] [--owner=ID] [--lease=SECONDS] [--json]\n"
    "tensors upload DTYPE:SHAPE:VALUES | DTYPE:SHAPE --file=PATH [--device=N] [--owner=ID]\n"
    "        [--lease=SECONDS] [--chunk-bytes=N] [--json]\n"
    "tensors download ID [--out=PATH] [--chunk-bytes=N] [--json]\n"
    "tensors info ID [--json] | renew ID [--lease=SECONDS] [--json] | free ID [ID ...]\n"
    "tensors list [--owner=ID] [--device=N] [--limit=N] [--json]";

std::string Shape(const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}
std::string Shape(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

// "ID  device D  DTYPE [shape]  N bytes  owner O": the id first, so
// scripts can take it with `cut -d' ' -f1`.
void PrintInfo(const v1::TensorInfo& t) {
  std::printf("%s  device %d  %s %s  %lu bytes%s%s\n", t.id().c_str(), t.device(),
              t.datatype().c_str(), Shape(t.shape()).c_str(),
              static_cast<unsigned long>(t.byte_size()), t.owner().empty() ? "" : "  owner ",
              t.owner().c_str());
}

void PrintInfoOrJson(const v1::TensorInfo& t, bool json) {
  if (json) {
    std::printf("%s\n", MessageToJson(t).c_str());
  } else {
    PrintInfo(t);
  }
}

struct Spec {
  DataType dtype;
  std::string datatype;
  std::vector<int64_t> shape;
  std::optional<std::string> data;  // when values were given
};

// Parses "DTYPE:SHAPE[:VALUES]" (SHAPE as 2x3; "" for a scalar).
std::optional<Spec> ParseSpec(absl::string_view command, absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits(':', 2));
  if (parts.size() < 2) {
    UsageError(command,
               absl::StrCat("'", text, "': expected DTYPE:SHAPE[:VALUES], e.g. FP32:2x2:1,2,3,4"));
    return std::nullopt;
  }
  inference::ModelInferRequest req;
  const std::string spec =
      absl::StrCat("T:", parts[0], ":", parts[1], ":", parts.size() == 3 ? parts[2] : "");
  if (absl::Status st = AddInputSpec(spec, &req); !st.ok()) {
    std::string message(st.message());
    absl::StrReplaceAll({{"--input 'T:", "'"}}, &message);
    UsageError(command, message);
    return std::nullopt;
  }
  Spec out;
  out.datatype = req.inputs(0).datatype();
  out.dtype = *ParseDataType(out.datatype);
  out.shape.assign(req.inputs(0).shape().begin(), req.inputs(0).shape().end());
  if (parts.size() == 3) out.data = req.raw_input_contents(0);
  return out;
}

uint64_t Elements(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

v1::AllocateTensorRequest Header(const Spec& spec, const std::optional<int64_t>& device,
                                 const std::string& owner, double lease) {
  v1::AllocateTensorRequest h;
  if (device) h.set_device(static_cast<int32_t>(*device));
  h.set_datatype(spec.datatype);
  for (int64_t d : spec.shape) h.add_shape(d);
  if (spec.dtype == DataType::kBytes && spec.data) h.set_byte_size(spec.data->size());
  h.set_owner(owner);
  h.set_lease_seconds(lease);
  return h;
}

int Alloc(InferdClient& client, const std::vector<std::string>& args) {
  std::optional<int64_t> device;
  std::string owner;
  double lease = 0;
  bool json = false;
  std::vector<std::string> pos;
  if (!ParseFlags("tensors alloc", args,
                  {{"device", &device}, {"owner", &owner}, {"lease", &lease}, {"json", &json}},
                  &pos)) {
    return 2;
  }
  if (pos.size() != 1) return UsageError("tensors alloc", "needs one DTYPE:SHAPE, e.g. FP32:2x2");
  std::optional<Spec> spec = ParseSpec("tensors alloc", pos[0]);
  if (!spec) return 2;
  if (spec->data) return UsageError("tensors alloc", "takes no VALUES (use tensors upload)");
  auto stub = v1::Memory::NewStub(client.channel());
  v1::AllocateTensorRequest req = Header(*spec, device, owner, lease);
  v1::TensorInfo info;
  absl::Status st = client.WithRetries(
      [&](grpc::ClientContext* ctx) { return stub->AllocateTensor(ctx, req, &info); });
  if (!st.ok()) return Fail(st);
  PrintInfoOrJson(info, json);
  return 0;
}

int Upload(InferdClient& client, const std::vector<std::string>& args) {
  std::optional<int64_t> device;
  std::string owner, file;
  double lease = 0;
  int64_t chunk = kDefaultChunkBytes;
  bool json = false;
  std::vector<std::string> pos;
  if (!ParseFlags("tensors upload", args,
                  {{"device", &device},
                   {"owner", &owner},
                   {"lease", &lease},
                   {"file", &file},
                   {"chunk-bytes", &chunk},
                   {"json", &json}},
                  &pos)) {
    return 2;
  }
  if (pos.size() != 1) {
    return UsageError("tensors upload",
                      "needs one DTYPE:SHAPE:VALUES (or DTYPE:SHAPE --file=PATH)");
  }
  if (chunk <= 0) return UsageError("tensors upload", "--chunk-bytes: must be positive");
  std::optional<Spec> spec = ParseSpec("tensors upload", pos[0]);
  if (!spec) return 2;
  if (spec->data && !file.empty()) {
    return UsageError("tensors upload", "give VALUES or --file, not both");
  }
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return UsageError("tensors upload", absl::StrCat("--file: cannot read '", file, "'"));
    spec->data = std::string(std::istreambuf_iterator<char>(in), {});
  }
  if (!spec->data)
    return UsageError("tensors upload", "needs VALUES (DTYPE:SHAPE:VALUES) or --file");
  const size_t size = DataTypeSize(spec->dtype);
  if (size != 0 && spec->data->size() != Elements(spec->shape) * size) {
    return UsageError(
        "tensors upload",
        absl::StrCat("shape ", Shape(spec->shape), " of ", spec->datatype, " needs ",
                     Elements(spec->shape) * size, " bytes, the data has ", spec->data->size()));
  }
  absl::StatusOr<v1::TensorInfo> info = UploadTensor(client, Header(*spec, device, owner, lease),
                                                     *spec->data, static_cast<size_t>(chunk));
  if (!info.ok()) return Fail(info.status());
  PrintInfoOrJson(*info, json);
  return 0;
}

// Every value of a tensor as a JSON array: numbers (strings where they
// have no JSON number, such as NaN), true/false, or strings for BYTES.
std::string ValuesJson(DataType dtype, const std::string& raw) {
  google::protobuf::ListValue list;
  if (dtype == DataType::kBytes) {
    size_t off = 0;
    while (off + 4 <= raw.size()) {
      const auto* p = reinterpret_cast<const uint8_t*>(raw.data() + off);
      const uint32_t len = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
      if (len > raw.size() - off - 4) break;
      list.add_values()->set_string_value(raw.substr(off + 4, len));
      off += 4 + len;
    }
  } else {
    for (absl::string_view v :
         absl::StrSplit(FormatValues(dtype, raw, SIZE_MAX), ',', absl::SkipEmpty())) {
      google::protobuf::Value* value = list.add_values();
      double d = 0;
      if (dtype == DataType::kBool) {
        value->set_bool_value(v == "true");
      } else if (absl::SimpleAtod(v, &d) && std::isfinite(d)) {
        value->set_number_value(d);
      } else {
        value->set_string_value(std::string(v));
      }
    }
  }
  return MessageToJson(list, /*indent=*/false);
}

int Download(InferdClient& client, const std::vector<std::string>& args) {
  std::string out;
  int64_t chunk = 0;
  bool json = false;
  std::vector<std::string> pos;
  if (!ParseFlags("tensors download", args,
                  {{"out", &out}, {"chunk-bytes", &chunk}, {"json", &json}}, &pos)) {
    return 2;
  }
  if (pos.size() != 1) return UsageError("tensors download", "needs one tensor ID");
  if (chunk < 0 || chunk > (4 << 20)) {
    return UsageError("tensors download", "--chunk-bytes: must be in [0, 4194304]");
  }
  absl::StatusOr<DownloadedTensor> t = DownloadTensor(client, pos[0], static_cast<uint32_t>(chunk));
  if (!t.ok()) return Fail(t.status());
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    f.write(t->data.data(), static_cast<std::streamsize>(t->data.size()));
    if (!f) return UsageError("tensors download", absl::StrCat("--out: cannot write '", out, "'"));
    if (json) {
      std::printf("{\"tensor\":%s,\"bytes_written\":%zu}\n",
                  MessageToJson(t->info, /*indent=*/false).c_str(), t->data.size());
      return 0;
    }
    std::printf("%s  %s %s  %zu bytes written to %s\n", pos[0].c_str(), t->info.datatype().c_str(),
                Shape(t->info.shape()).c_str(), t->data.size(), out.c_str());
    return 0;
  }
  std::optional<DataType> dt = ParseDataType(t->info.datatype());
  if (json) {
    std::printf("{\"tensor\":%s,\"values\":%s}\n",
                MessageToJson(t->info, /*indent=*/false).c_str(),
                dt ? ValuesJson(*dt, t->data).c_str() : "null");
    return 0;
  }
  std::printf("%s %s: %s\n", t->info.datatype().c_str(), Shape(t->info.shape()).c_str(),
              dt ? FormatValues(*dt, t->data).c_str() : "?");
  return 0;
}

int Info(InferdClient& client, const std::vector<std::string>& args, bool renew) {
  const char* command = renew ? "tensors renew" : "tensors info";
  bool json = false;
  double lease = 0;
  std::vector<std::string> pos;
  std::vector<Flag> flags = {{"json", &json}};
  if (renew) flags.push_back({"lease", &lease});
  if (!ParseFlags(command, args, flags, &pos)) return 2;
  if (pos.size() != 1) return UsageError(command, "needs one tensor ID");
  auto stub = v1::Memory::NewStub(client.channel());
  v1::TensorInfo info;
  absl::Status st = client.WithRetries([&](grpc::ClientContext* ctx) {
    if (renew) {
      v1::RenewLeaseRequest req;
      req.set_tensor_id(pos[0]);
      req.set_lease_seconds(lease);
      return stub->RenewLease(ctx, req, &info);
    }
    v1::GetTensorRequest req;
    req.set_tensor_id(pos[0]);
    return stub->GetTensor(ctx, req, &info);
  });
  if (!st.ok()) return Fail(st);
  if (json) {
    std::printf("%s\n", MessageToJson(info).c_str());
  } else {
    PrintInfo(info);
    std::printf("  lease expires %s UTC, pins %u\n",
                FormatTimeMs(info.lease_expires_unix_ms()).c_str(), info.pin_count());
  }
  return 0;
}

int Free(InferdClient& client, const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  if (!ParseFlags("tensors free", args, {}, &pos)) return 2;
  if (pos.empty()) return UsageError("tensors free", "needs one or more tensor IDs");
  auto stub = v1::Memory::NewStub(client.channel());
  for (const std::string& id : pos) {
    v1::FreeTensorRequest req;
    req.set_tensor_id(id);
    v1::FreeTensorResponse resp;
    absl::Status st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->FreeTensor(ctx, req, &resp); });
    if (!st.ok()) return Fail(st);
    std::printf("freed %s\n", id.c_str());
  }
  return 0;
}

int List(InferdClient& client, const std::vector<std::string>& args) {
  std::string owner;
  std::optional<int64_t> device;
  int64_t limit = 0;
  bool json = false;
  std::vector<std::string> pos;
  if (!ParseFlags("tensors list", args,
                  {{"owner", &owner}, {"device", &device}, {"limit", &limit}, {"json", &json}},
                  &pos)) {
    return 2;
  }
  if (!pos.empty())
    return UsageError("tensors list", absl::StrCat("unknown argument '", pos[0], "'"));
  if (limit < 0) return UsageError("tensors list", "--limit: must be >= 0 (0: all)");
  auto stub = v1::Memory::NewStub(client.channel());
  v1::ListTensorsResponse all;
  v1::ListTensorsRequest req;
  req.set_owner(owner);
  if (device) req.set_device(static_cast<int32_t>(*device));
  do {
    v1::ListTensorsResponse page;
    absl::Status st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->ListTensors(ctx, req, &page); });
    if (!st.ok()) return Fail(st);
    for (auto& t : *page.mutable_tensors()) *all.add_tensors() = std::move(t);
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty() && (limit == 0 || all.tensors_size() < limit));
  while (limit > 0 && all.tensors_size() > limit) all.mutable_tensors()->RemoveLast();
  if (json) {
    std::printf("%s\n", MessageToJson(all).c_str());
    return 0;
  }
  std::printf("%-32s %4s %-6s %-14s %12s %-14s %-12s %4s\n", "id", "dev", "dtype", "shape", "bytes",
              "owner", "lease (UTC)", "pins");
  for (const auto& t : all.tensors()) {
    std::printf("%-32s %4d %-6s %-14s %12lu %-14s %-12s %4u\n", t.id().c_str(), t.device(),
                t.datatype().c_str(), Shape(t.shape()).c_str(),
                static_cast<unsigned long>(t.byte_size()), t.owner().c_str(),
                FormatTimeMs(t.lease_expires_unix_ms()).c_str(), t.pin_count());
  }
  return 0;
}

}  // namespace

int TensorsCommand(InferdClient& client, const std::vector<std::string>& args) {
  if (args.empty())
    return UsageError("tensors", absl::StrCat("needs a subcommand:\n", kTensorsUsage));
  const std::string& sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "alloc") return Alloc(client, rest);
  if (sub == "upload") return Upload(client, rest);
  if (sub == "download") return Download(client, rest);
  if (sub == "info") return Info(client, rest, /*renew=*/false);
  if (sub == "renew") return Info(client, rest, /*renew=*/true);
  if (sub == "free") return Free(client, rest);
  if (sub == "list") return List(client, rest);
  return UsageError("tensors",
                    absl::StrCat("unknown subcommand '", sub, "'; one of:\n", kTensorsUsage));
}

}  // namespace inferd::inferctl
