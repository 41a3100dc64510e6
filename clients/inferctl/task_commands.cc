// tasks: inferd.v1.Scheduler — submit, get, wait, cancel, watch and list
// tasks.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "clients/cpp/proto_text.h"
#include "clients/cpp/tensor_helpers.h"
#include "clients/inferctl/commands.h"
#include "core/tensor/dtype.h"
#include "inferd/v1/scheduler.grpc.pb.h"

namespace inferd::inferctl {
namespace {

constexpr char kTasksUsage[] =
    "tasks submit MODEL --input=NAME:DTYPE:SHAPE:VALUES | --input=NAME=tensor:ID |\n"
    "        --input=NAME=task:TASK_ID:OUTPUT [...] [--priority=P] [--depends-on=TASK_ID]...\n"
    "        [--memory=BYTES] [--device=N] [--task-timeout=S] [--max-retries=N] [--keep-outputs]\n"
    "        [--owner=ID] [--param=KEY=NUMBER]... [--output=NAME]... [--wait] [--wait-timeout=S]\n"
    "tasks get ID [--json] | wait ID [--wait-timeout=S] [--json] | cancel ID\n"
    "tasks watch [ID ...] [--model=NAME] [--count=N] [--for=S] [--json]\n"
    "tasks list [--state=S] [--model=NAME] [--owner=ID] [--limit=N] [--json]";

const google::protobuf::EnumDescriptor* StateEnum() { return v1::TaskState_descriptor(); }

bool Terminal(v1::TaskState s) {
  return s == v1::TASK_STATE_SUCCEEDED || s == v1::TASK_STATE_FAILED ||
         s == v1::TASK_STATE_CANCELLED || s == v1::TASK_STATE_TIMED_OUT;
}

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

void PrintTask(const v1::Task& t) {
  std::printf("task %s  %s v%s  %s  %s  device %d  attempts %d%s\n", t.task_id().c_str(),
              t.model_name().c_str(), t.model_version().c_str(),
              ShortEnumName(v1::Priority_descriptor(), t.priority()).c_str(),
              ShortEnumName(StateEnum(), t.state()).c_str(), t.device(), t.attempts(),
              t.batched() ? "  batched" : "");
  std::printf("  submitted %s UTC  queued %.6f s  ran %.6f s\n",
              FormatTimeMs(t.submit_unix_ms()).c_str(), t.queue_seconds(), t.execution_seconds());
  if (t.status_code() != 0) {
    std::printf("  error: %s: %s\n", CodeName(t.status_code()).c_str(), t.status_message().c_str());
  }
  for (const auto& o : t.outputs()) {
    const std::string shape = absl::StrCat("[", absl::StrJoin(o.shape(), ","), "]");
    if (!o.tensor_id().empty()) {
      std::printf("  %s %s %s: tensor %s on device %d\n", o.name().c_str(), o.datatype().c_str(),
                  shape.c_str(), o.tensor_id().c_str(), o.device());
    } else {
      std::optional<DataType> dt = ParseDataType(o.datatype());
      std::printf("  %s %s %s: %s\n", o.name().c_str(), o.datatype().c_str(), shape.c_str(),
                  dt ? FormatValues(*dt, o.data()).c_str() : "?");
    }
  }
}

// Parses one --input of tasks submit into `spec`.
bool AddTaskInput(absl::string_view text, v1::TaskSpec* spec) {
  const size_t eq = text.find('=');
  const size_t colon = text.find(':');
  if (eq != absl::string_view::npos && (colon == absl::string_view::npos || eq < colon)) {
    v1::TaskInput* in = spec->add_inputs();
    in->set_name(std::string(text.substr(0, eq)));
    absl::string_view ref = text.substr(eq + 1);
    std::vector<std::string> parts = absl::StrSplit(ref, ':');
    if (parts.size() == 2 && parts[0] == "tensor" && !parts[1].empty()) {
      in->set_tensor_id(parts[1]);
      return true;
    }
    if (parts.size() == 3 && parts[0] == "task" && !parts[1].empty() && !parts[2].empty()) {
      in->mutable_task_output()->set_task(parts[1]);
      in->mutable_task_output()->set_output(parts[2]);
      return true;
    }
    UsageError(
        "tasks submit",
        absl::StrCat("--input '", text, "': expected NAME=tensor:ID or NAME=task:TASK_ID:OUTPUT"));
    return false;
  }
  inference::ModelInferRequest req;
  if (absl::Status st = AddInputSpec(text, &req); !st.ok()) {
    UsageError("tasks submit", st.message());
    return false;
  }
  v1::TaskInput* in = spec->add_inputs();
  in->set_name(req.inputs(0).name());
  v1::InlineTensor* t = in->mutable_tensor();
  t->set_name(req.inputs(0).name());
  t->set_datatype(req.inputs(0).datatype());
  *t->mutable_shape() = req.inputs(0).shape();
  t->set_data(req.raw_input_contents(0));
  return true;
}

// Waits for a task and prints it; exit 0 only when it SUCCEEDED.
int WaitAndPrint(InferdClient& client, const std::string& id, double wait_seconds, bool json) {
  auto stub = v1::Scheduler::NewStub(client.channel());
  v1::WaitTaskRequest req;
  req.set_task_id(id);
  req.set_timeout_seconds(wait_seconds);
  v1::WaitTaskResponse resp;
  absl::Status st =
      client.WithRetries([&](grpc::ClientContext* ctx) { return stub->WaitTask(ctx, req, &resp); },
                         absl::Seconds(wait_seconds) + client.options().timeout);
  if (!st.ok()) return Fail(st);
  if (json) {
    std::printf("%s\n", MessageToJson(resp).c_str());
  } else {
    PrintTask(resp.task());
    if (!resp.finished()) {
      std::printf("  still %s after %g s\n",
                  ShortEnumName(StateEnum(), resp.task().state()).c_str(), wait_seconds);
    }
  }
  return resp.task().state() == v1::TASK_STATE_SUCCEEDED ? 0 : 1;
}

int Submit(InferdClient& client, const std::vector<std::string>& args) {
  std::vector<std::string> inputs, depends, params, outputs, pos;
  std::string priority, owner;
  int64_t memory = 0;
  std::optional<int64_t> device, retries;
  double task_timeout = 0, wait_timeout = 30;
  bool keep = false, wait = false, json = false;
  if (!ParseFlags("tasks submit", args,
                  {{"input", &inputs},
                   {"depends-on", &depends},
                   {"param", &params},
                   {"output", &outputs},
                   {"priority", &priority},
                   {"owner", &owner},
                   {"memory", &memory},
                   {"device", &device},
                   {"max-retries", &retries},
                   {"task-timeout", &task_timeout},
                   {"keep-outputs", &keep},
                   {"wait", &wait},
                   {"wait-timeout", &wait_timeout},
                   {"json", &json}},
                  &pos)) {
    return 2;
  }
  if (pos.size() != 1) {
    return UsageError("tasks submit",
                      "needs one MODEL, e.g. inferctl tasks submit add "
                      "--input=INPUT0:FP32:2:1,2 --input=INPUT1:FP32:2:3,4");
  }
  v1::TaskSpec spec;
  spec.set_model_name(pos[0]);
  for (const auto& in : inputs) {
    if (!AddTaskInput(in, &spec)) return 2;
  }
  if (!priority.empty()) {
    std::optional<int> p = ParseEnumName(v1::Priority_descriptor(), priority);
    if (!p || *p == v1::PRIORITY_UNSPECIFIED) {
      return UsageError("tasks submit", absl::StrCat("--priority: '", priority, "' is not one of ",
                                                     EnumChoices(v1::Priority_descriptor())));
    }
    spec.set_priority(static_cast<v1::Priority>(*p));
  }
  for (const auto& d : depends) spec.add_depends_on(d);
  if (memory < 0) return UsageError("tasks submit", "--memory: must be >= 0 bytes");
  spec.set_memory_requirement_bytes(static_cast<uint64_t>(memory));
  if (device) spec.set_device(static_cast<int32_t>(*device));
  if (retries) spec.set_max_retries(static_cast<int32_t>(*retries));
  if (task_timeout < 0) return UsageError("tasks submit", "--task-timeout: must be >= 0 seconds");
  if (wait_timeout <= 0) return UsageError("tasks submit", "--wait-timeout: must be > 0 seconds");
  spec.set_timeout_seconds(task_timeout);
  spec.set_keep_outputs_on_device(keep);
  spec.set_owner(owner);
  for (const auto& o : outputs) spec.add_requested_outputs(o);
  for (absl::string_view p : params) {
    const size_t eq = p.find('=');
    double v;
    if (eq == absl::string_view::npos || !absl::SimpleAtod(p.substr(eq + 1), &v)) {
      return UsageError("tasks submit",
                        absl::StrCat("--param '", p, "': expected KEY=NUMBER, e.g. factor=3"));
    }
    (*spec.mutable_parameters())[std::string(p.substr(0, eq))] = v;
  }
  auto stub = v1::Scheduler::NewStub(client.channel());
  v1::SubmitTaskRequest req;
  *req.mutable_task() = spec;
  v1::SubmitTaskResponse resp;
  absl::Status st = client.WithRetries(
      [&](grpc::ClientContext* ctx) { return stub->SubmitTask(ctx, req, &resp); });
  if (!st.ok()) return Fail(st);
  if (wait) return WaitAndPrint(client, resp.task_id(), wait_timeout, json);
  std::printf("%s\n", resp.task_id().c_str());
  return 0;
}

int GetOrCancel(InferdClient& client, const std::vector<std::string>& args, bool cancel) {
  const char* command = cancel ? "tasks cancel" : "tasks get";
  bool json = false;
  std::vector<std::string> pos;
  if (!ParseFlags(command, args, {{"json", &json}}, &pos)) return 2;
  if (pos.size() != 1) return UsageError(command, "needs one task ID");
  auto stub = v1::Scheduler::NewStub(client.channel());
  v1::Task task;
  absl::Status st = client.WithRetries([&](grpc::ClientContext* ctx) {
    if (cancel) {
      v1::CancelTaskRequest req;
      req.set_task_id(pos[0]);
      v1::CancelTaskResponse resp;
      grpc::Status s = stub->CancelTask(ctx, req, &resp);
      task = resp.task();
      return s;
    }
    v1::GetTaskRequest req;
    req.set_task_id(pos[0]);
    v1::GetTaskResponse resp;
    grpc::Status s = stub->GetTask(ctx, req, &resp);
    task = resp.task();
    return s;
  });
  if (!st.ok()) return Fail(st);
  if (json) {
    std::printf("%s\n", MessageToJson(task).c_str());
  } else {
    PrintTask(task);
  }
  return 0;
}

int Wait(InferdClient& client, const std::vector<std::string>& args) {
  double wait_timeout = 30;
  bool json = false;
  std::vector<std::string> pos;
  if (!ParseFlags("tasks wait", args, {{"wait-timeout", &wait_timeout}, {"json", &json}}, &pos)) {
    return 2;
  }
  if (pos.size() != 1) return UsageError("tasks wait", "needs one task ID");
  if (wait_timeout <= 0) return UsageError("tasks wait", "--wait-timeout: must be > 0 seconds");
  return WaitAndPrint(client, pos[0], wait_timeout, json);
}

// One line per event; with `json`, one JSON document per line.
void PrintEvent(const v1::TaskEvent& e, bool json) {
  if (json) {
    std::printf("%s\n", MessageToJson(e, /*indent=*/false).c_str());
    std::fflush(stdout);
    return;
  }
  std::printf("%s  %s  %-11s %-10s %s device %d", FormatTimeMs(e.time_unix_ms()).c_str(),
              e.task_id().c_str(), ShortEnumName(StateEnum(), e.state()).c_str(),
              ShortEnumName(v1::Priority_descriptor(), e.priority()).c_str(),
              e.model_name().c_str(), e.device());
  if (e.status_code() != 0) {
    std::printf("  %s: %s", CodeName(e.status_code()).c_str(), e.status_message().c_str());
  }
  std::printf("\n");
  std::fflush(stdout);
}

// Streams events. Ends after --count events, after --for seconds, or — when
// task IDs are given and no --count — once each of them has finished (their
// state is also read once the stream is open, so a task that finished
// before is not waited for).
int Watch(InferdClient& client, const std::vector<std::string>& args) {
  std::string model;
  int64_t count = 0;
  double for_seconds = 0;
  bool json = false;
  std::vector<std::string> ids;
  if (!ParseFlags("tasks watch", args,
                  {{"model", &model}, {"count", &count}, {"for", &for_seconds}, {"json", &json}},
                  &ids)) {
    return 2;
  }
  if (count < 0) return UsageError("tasks watch", "--count: must be >= 0");
  if (for_seconds < 0) return UsageError("tasks watch", "--for: must be >= 0 seconds");
  auto stub = v1::Scheduler::NewStub(client.channel());
  v1::WatchTasksRequest req;
  for (const auto& id : ids) req.add_task_ids(id);
  req.set_model_name(model);
  grpc::ClientContext ctx;
  AddCallCredentials(client.options(), &ctx);
  if (for_seconds > 0)
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(for_seconds)));
  std::unique_ptr<grpc::ClientReader<v1::WatchTasksResponse>> reader = stub->WatchTasks(&ctx, req);
  absl::flat_hash_set<std::string> pending(ids.begin(), ids.end());
  const bool until_done = !ids.empty() && count == 0;
  if (until_done) {
    for (const auto& id : ids) {
      v1::GetTaskRequest get;
      get.set_task_id(id);
      get.set_omit_outputs(true);
      v1::GetTaskResponse resp;
      absl::Status st =
          client.WithRetries([&](grpc::ClientContext* c) { return stub->GetTask(c, get, &resp); });
      if (!st.ok()) {
        ctx.TryCancel();
        reader->Finish();
        return Fail(st);
      }
      if (Terminal(resp.task().state())) {
        v1::TaskEvent e;
        e.set_task_id(id);
        e.set_state(resp.task().state());
        e.set_time_unix_ms(resp.task().finish_unix_ms());
        e.set_device(resp.task().device());
        e.set_model_name(resp.task().model_name());
        e.set_priority(resp.task().priority());
        e.set_status_code(resp.task().status_code());
        e.set_status_message(resp.task().status_message());
        PrintEvent(e, json);
        pending.erase(id);
      }
    }
  }
  int64_t seen = 0;
  v1::WatchTasksResponse msg;
  while ((!until_done || !pending.empty()) && reader->Read(&msg)) {
    PrintEvent(msg.event(), json);
    ++seen;
    if (Terminal(msg.event().state())) pending.erase(msg.event().task_id());
    if (count > 0 && seen >= count) break;
  }
  const bool done = (count > 0 && seen >= count) || (until_done && pending.empty());
  if (done) ctx.TryCancel();
  grpc::Status st = reader->Finish();
  if (done || (for_seconds > 0 && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
    return 0;
  }
  return st.ok() ? 0 : Fail(FromGrpcStatus(st));
}

int List(InferdClient& client, const std::vector<std::string>& args) {
  std::string state, model, owner;
  int64_t limit = 0;
  bool json = false;
  std::vector<std::string> pos;
  if (!ParseFlags("tasks list", args,
                  {{"state", &state},
                   {"model", &model},
                   {"owner", &owner},
                   {"limit", &limit},
                   {"json", &json}},
                  &pos)) {
    return 2;
  }
  if (!pos.empty())
    return UsageError("tasks list", absl::StrCat("unknown argument '", pos[0], "'"));
  if (limit < 0) return UsageError("tasks list", "--limit: must be >= 0 (0: all)");
  v1::ListTasksRequest req;
  if (!state.empty()) {
    std::optional<int> s = ParseEnumName(StateEnum(), state);
    if (!s || *s == v1::TASK_STATE_UNSPECIFIED) {
      return UsageError("tasks list", absl::StrCat("--state: '", state, "' is not one of ",
                                                   EnumChoices(StateEnum())));
    }
    req.set_state(static_cast<v1::TaskState>(*s));
  }
  req.set_model_name(model);
  req.set_owner(owner);
  auto stub = v1::Scheduler::NewStub(client.channel());
  v1::ListTasksResponse all;
  do {
    v1::ListTasksResponse page;
    absl::Status st = client.WithRetries(
        [&](grpc::ClientContext* ctx) { return stub->ListTasks(ctx, req, &page); });
    if (!st.ok()) return Fail(st);
    for (auto& t : *page.mutable_tasks()) *all.add_tasks() = std::move(t);
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty() && (limit == 0 || all.tasks_size() < limit));
  while (limit > 0 && all.tasks_size() > limit) all.mutable_tasks()->RemoveLast();
  if (json) {
    std::printf("%s\n", MessageToJson(all).c_str());
    return 0;
  }
  std::printf("%-32s %-16s %-10s %-11s %4s %-12s %10s\n", "id", "model", "priority", "state", "dev",
              "submitted", "exec s");
  for (const auto& t : all.tasks()) {
    std::printf("%-32s %-16s %-10s %-11s %4d %-12s %10.6f\n", t.task_id().c_str(),
                t.model_name().c_str(),
                ShortEnumName(v1::Priority_descriptor(), t.priority()).c_str(),
                ShortEnumName(StateEnum(), t.state()).c_str(), t.device(),
                FormatTimeMs(t.submit_unix_ms()).c_str(), t.execution_seconds());
  }
  return 0;
}

}  // namespace

int TasksCommand(InferdClient& client, const std::vector<std::string>& args) {
  if (args.empty()) return UsageError("tasks", absl::StrCat("needs a subcommand:\n", kTasksUsage));
  const std::string& sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "submit") return Submit(client, rest);
  if (sub == "get") return GetOrCancel(client, rest, /*cancel=*/false);
  if (sub == "wait") return Wait(client, rest);
  if (sub == "cancel") return GetOrCancel(client, rest, /*cancel=*/true);
  if (sub == "watch") return Watch(client, rest);
  if (sub == "list") return List(client, rest);
  return UsageError("tasks",
                    absl::StrCat("unknown subcommand '", sub, "'; one of:\n", kTasksUsage));
}

}  // namespace inferd::inferctl
