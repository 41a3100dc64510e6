// transfer and collective: inferd.v1.Communication — prioritized copies of
// stored tensors between devices and the host, and collectives over tensors
// on several devices.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "clients/cpp/proto_text.h"
#include "clients/cpp/tensor_helpers.h"
#include "clients/inferctl/commands.h"
#include "core/tensor/dtype.h"
#include "inferd/v1/communication.grpc.pb.h"
#include "inferd/v1/memory.grpc.pb.h"

namespace inferd::inferctl {
namespace {

constexpr char kTransferUsage[] =
    "transfer TENSOR_ID --to=N|host [--priority=P] [--move] [--owner=ID] [--lease-ms=N]\n"
    "        [--no-wait] [--wait-timeout=S] [--json]\n"
    "transfer --values=DTYPE:SHAPE:VALUES --to=N [...]   (bytes from this host)\n"
    "transfer get TRANSFER_ID [--json] | wait TRANSFER_ID [--wait-timeout=S] [--json]";

constexpr char kCollectiveUsage[] =
    "collective allreduce|broadcast|allgather|reducescatter TENSOR_ID TENSOR_ID ...\n"
    "        [--op=sum|prod|min|max|avg] [--root=INDEX] [--lease-ms=N] [--json]";

// Prints a transfer; `values_dtype` formats bytes copied to the host.
// Returns 0 for SUCCEEDED, 1 otherwise.
int PrintTransfer(const v1::Transfer& t, bool json, std::optional<DataType> values_dtype) {
  if (json) {
    std::printf("%s\n", MessageToJson(t).c_str());
  } else {
    std::printf("transfer %s  %s  %s (%s, %s)  %s in %u chunk(s)", t.transfer_id().c_str(),
                ShortEnumName(v1::TransferState_descriptor(), t.state()).c_str(), t.link().c_str(),
                ShortEnumName(v1::LinkKind_descriptor(), t.link_kind()).c_str(),
                ShortEnumName(v1::Priority_descriptor(), t.priority()).c_str(),
                FormatBytes(t.byte_size()).c_str(), t.chunks());
    if (t.bandwidth_bytes_per_second() > 0) {
      std::printf("  %s/s",
                  FormatBytes(static_cast<uint64_t>(t.bandwidth_bytes_per_second())).c_str());
    }
    std::printf("\n");
    if (t.has_result() && !t.result().id().empty()) {
      std::printf("  -> tensor %s on device %d%s\n", t.result().id().c_str(), t.result().device(),
                  t.source_freed() ? " (source freed)" : "");
    }
    if (t.state() == v1::TRANSFER_STATE_SUCCEEDED && t.dst_device() == -1) {
      std::printf("  -> host: %s\n", values_dtype
                                         ? FormatValues(*values_dtype, t.data()).c_str()
                                         : absl::StrCat(t.data().size(), " bytes").c_str());
    }
  }
  if (t.state() == v1::TRANSFER_STATE_FAILED) {
    return Fail(absl::Status(static_cast<absl::StatusCode>(t.error_code()), t.error_message()));
  }
  if (t.state() != v1::TRANSFER_STATE_SUCCEEDED) {
    std::fprintf(stderr, "inferctl: transfer %s is still %s\n", t.transfer_id().c_str(),
                 ShortEnumName(v1::TransferState_descriptor(), t.state()).c_str());
    return 1;
  }
  return 0;
}

absl::StatusOr<v1::Transfer> WaitTransfer(InferdClient& client, const std::string& id,
                                          double wait_seconds) {
  auto stub = v1::Communication::NewStub(client.channel());
  v1::WaitTransferRequest req;
  req.set_transfer_id(id);
  req.set_timeout_ms(static_cast<int64_t>(wait_seconds * 1000));
  v1::Transfer t;
  absl::Status st =
      client.WithRetries([&](grpc::ClientContext* ctx) { return stub->WaitTransfer(ctx, req, &t); },
                         absl::Seconds(wait_seconds) + client.options().timeout);
  if (!st.ok()) return st;
  return t;
}

int GetOrWait(InferdClient& client, const std::vector<std::string>& args, bool wait) {
  const char* command = wait ? "transfer wait" : "transfer get";
  bool json = false;
  double wait_timeout = 30;
  std::vector<std::string> pos;
  std::vector<Flag> flags = {{"json", &json}};
  if (wait) flags.push_back({"wait-timeout", &wait_timeout});
  if (!ParseFlags(command, args, flags, &pos)) return 2;
  if (pos.size() != 1) return UsageError(command, "needs one TRANSFER_ID");
  if (wait_timeout <= 0) return UsageError(command, "--wait-timeout: must be > 0 seconds");
  absl::StatusOr<v1::Transfer> t;
  if (wait) {
    t = WaitTransfer(client, pos[0], wait_timeout);
  } else {
    auto stub = v1::Communication::NewStub(client.channel());
    v1::GetTransferRequest req;
    req.set_transfer_id(pos[0]);
    v1::Transfer out;
    absl::Status st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->GetTransfer(ctx, req, &out); });
    t = st.ok() ? absl::StatusOr<v1::Transfer>(out) : st;
  }
  if (!t.ok()) return Fail(t.status());
  const int code = PrintTransfer(*t, json, std::nullopt);
  // get reports a transfer in any state; only a failed one is an error.
  return wait || t->state() == v1::TRANSFER_STATE_FAILED ? code : 0;
}

int Start(InferdClient& client, const std::vector<std::string>& args) {
  std::string to, priority, owner, values;
  int64_t lease_ms = 0;
  bool move = false, no_wait = false, json = false;
  double wait_timeout = 30;
  std::vector<std::string> pos;
  if (!ParseFlags("transfer", args,
                  {{"to", &to},
                   {"priority", &priority},
                   {"owner", &owner},
                   {"values", &values},
                   {"lease-ms", &lease_ms},
                   {"move", &move},
                   {"no-wait", &no_wait},
                   {"wait-timeout", &wait_timeout},
                   {"json", &json}},
                  &pos)) {
    return 2;
  }
  if (pos.size() != (values.empty() ? 1u : 0u)) {
    return UsageError("transfer",
                      absl::StrCat("needs one TENSOR_ID or --values; usage:\n", kTransferUsage));
  }
  std::optional<int> dst = ParseDevice(to);
  if (!dst)
    return UsageError("transfer",
                      absl::StrCat("--to: '", to, "' is not a device number or 'host'"));
  if (wait_timeout <= 0) return UsageError("transfer", "--wait-timeout: must be > 0 seconds");
  v1::AsyncTransferRequest req;
  std::optional<DataType> values_dtype;
  if (!values.empty()) {
    if (*dst < 0) return UsageError("transfer", "--values: bytes from this host need --to=N");
    inference::ModelInferRequest spec;
    if (absl::Status st = AddInputSpec(absl::StrCat("T:", values), &spec); !st.ok()) {
      return UsageError("transfer", absl::StrCat("--values: ", st.message()));
    }
    v1::InlineTensor* t = req.mutable_inline_tensor();
    t->set_datatype(spec.inputs(0).datatype());
    *t->mutable_shape() = spec.inputs(0).shape();
    t->set_data(spec.raw_input_contents(0));
  } else {
    req.set_tensor_id(pos[0]);
    if (*dst < 0 && !json) {  // read the datatype to print the values
      auto mem = v1::Memory::NewStub(client.channel());
      v1::GetTensorRequest get;
      get.set_tensor_id(pos[0]);
      v1::TensorInfo info;
      absl::Status st = client.WithRetries(
          [&](grpc::ClientContext* ctx) { return mem->GetTensor(ctx, get, &info); });
      if (!st.ok()) return Fail(st);
      values_dtype = ParseDataType(info.datatype());
    }
  }
  if (*dst < 0)
    req.set_to_host(true);
  else
    req.set_dst_device(*dst);
  if (!priority.empty()) {
    std::optional<int> p = ParseEnumName(v1::Priority_descriptor(), priority);
    if (!p || *p == v1::PRIORITY_UNSPECIFIED) {
      return UsageError("transfer", absl::StrCat("--priority: '", priority, "' is not one of ",
                                                 EnumChoices(v1::Priority_descriptor())));
    }
    req.set_priority(static_cast<v1::Priority>(*p));
  }
  req.set_move(move);
  req.set_owner(owner);
  req.set_lease_ms(lease_ms);
  auto stub = v1::Communication::NewStub(client.channel());
  v1::AsyncTransferResponse resp;
  absl::Status st = client.WithRetries(
      [&](grpc::ClientContext* ctx) { return stub->AsyncTransfer(ctx, req, &resp); });
  if (!st.ok()) return Fail(st);
  if (no_wait) {
    std::printf("%s\n", resp.transfer_id().c_str());
    return 0;
  }
  absl::StatusOr<v1::Transfer> t = WaitTransfer(client, resp.transfer_id(), wait_timeout);
  if (!t.ok()) return Fail(t.status());
  return PrintTransfer(*t, json, values_dtype);
}

}  // namespace

int TransferCommand(InferdClient& client, const std::vector<std::string>& args) {
  if (args.empty()) return UsageError("transfer", absl::StrCat("usage:\n", kTransferUsage));
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "get") return GetOrWait(client, rest, /*wait=*/false);
  if (args[0] == "wait") return GetOrWait(client, rest, /*wait=*/true);
  return Start(client, args);
}

int CollectiveCommand(InferdClient& client, const std::vector<std::string>& args) {
  if (args.empty()) return UsageError("collective", absl::StrCat("usage:\n", kCollectiveUsage));
  const std::string& op_name = args[0];
  const std::string command = absl::StrCat("collective ", op_name);
  std::string op = "sum";
  int64_t root = 0, lease_ms = 0;
  bool json = false;
  std::vector<std::string> ids;
  if (!ParseFlags(command, std::vector<std::string>(args.begin() + 1, args.end()),
                  {{"op", &op}, {"root", &root}, {"lease-ms", &lease_ms}, {"json", &json}}, &ids)) {
    return 2;
  }
  if (ids.empty()) return UsageError(command, "needs the TENSOR_IDs, one per device");
  std::optional<int> reduce = ParseEnumName(v1::ReduceOp_descriptor(), op);
  if (!reduce || *reduce == v1::REDUCE_OP_UNSPECIFIED) {
    return UsageError(command, absl::StrCat("--op: '", op, "' is not one of ",
                                            EnumChoices(v1::ReduceOp_descriptor())));
  }
  auto stub = v1::Communication::NewStub(client.channel());
  v1::CollectiveResponse resp;
  absl::Status st;
  if (op_name == "allreduce") {
    v1::AllReduceRequest req;
    for (const auto& id : ids) req.add_tensor_ids(id);
    req.set_op(static_cast<v1::ReduceOp>(*reduce));
    st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->AllReduce(ctx, req, &resp); });
  } else if (op_name == "broadcast") {
    v1::BroadcastRequest req;
    for (const auto& id : ids) req.add_tensor_ids(id);
    req.set_root(static_cast<int32_t>(root));
    st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->Broadcast(ctx, req, &resp); });
  } else if (op_name == "allgather") {
    v1::AllGatherRequest req;
    for (const auto& id : ids) req.add_tensor_ids(id);
    req.set_lease_ms(lease_ms);
    st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->AllGather(ctx, req, &resp); });
  } else if (op_name == "reducescatter") {
    v1::ReduceScatterRequest req;
    for (const auto& id : ids) req.add_tensor_ids(id);
    req.set_op(static_cast<v1::ReduceOp>(*reduce));
    req.set_lease_ms(lease_ms);
    st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->ReduceScatter(ctx, req, &resp); });
  } else {
    return UsageError("collective", absl::StrCat("unknown operation '", op_name, "'; usage:\n",
                                                 kCollectiveUsage));
  }
  if (!st.ok()) return Fail(st);
  if (json) {
    std::printf("%s\n", MessageToJson(resp).c_str());
    return 0;
  }
  std::printf("%s over devices [%s] (%s): %s in %.6f s\n", op_name.c_str(),
              absl::StrJoin(resp.devices(), ",").c_str(), resp.implementation().c_str(),
              FormatBytes(resp.byte_size()).c_str(), resp.duration_seconds());
  for (const auto& t : resp.outputs()) {
    std::printf("  %s  device %d  %s [%s]\n", t.id().c_str(), t.device(), t.datatype().c_str(),
                absl::StrJoin(t.shape(), ",").c_str());
  }
  return 0;
}

}  // namespace inferd::inferctl
