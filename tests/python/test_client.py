"""Tests of the Python client package (clients/python/inferd_client): the
pure-Python tensor helpers, the low-level Client against the real daemon on
every service, and the InferdManager facade with MultiGPUManager's method names."""

import enum
import queue
import threading

import grpc
import pytest

import inferd_client
from inferd_client import (Client, InferdError, InferdManager, MultiGPUManager, TaskOutputRef,
                           Tensor, convert, datatype_name)
from inferd_client.tensors import decode, encode

from conftest import Daemon

MANAGER_METHODS = (
    "optimize_memory_allocation", "get_optimal_batch_size", "get_memory_stats", "async_transfer",
    "get_communication_stats", "collect_workload_metrics", "get_scaling_stats",
    "schedule_inference_task", "get_scheduler_stats", "get_performance_report",
)
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT")


@pytest.fixture(scope="module")
def client(daemon):
    with Client(daemon.target, timeout=30, owner="pytest") as c:
        yield c


@pytest.fixture(scope="module")
def manager(daemon):
    with InferdManager(daemon.target, owner="pytest-manager") as m:
        yield m


# -- tensors (no daemon) ----------------------------------------------------

@pytest.mark.parametrize("datatype,values", [
    ("BOOL", [True, False, True]),
    ("UINT8", [0, 255]), ("UINT16", [0, 65535]), ("UINT32", [0, 2**32 - 1]),
    ("UINT64", [0, 2**64 - 1]), ("INT8", [-128, 127]), ("INT16", [-32768, 32767]),
    ("INT32", [-2**31, 2**31 - 1]), ("INT64", [-2**63, 2**63 - 1]),
    ("FP16", [0.5, -2.0, 65504.0]), ("BF16", [1.0, -3.5, 256.0]),
    ("FP32", [1.5, -0.25]), ("FP64", [1e300, -1e-300]),
    ("BYTES", [b"", b"abc", b"\x00\xff"]),
])
def test_tensor_values_round_trip_every_datatype(datatype, values):
    t = Tensor.from_values(values, datatype)
    assert t.shape == [len(values)]
    assert t.values() == values
    assert Tensor(datatype, t.shape, t.data) == t


def test_tensor_shape_follows_nesting_and_tolist_restores_it():
    t = Tensor.from_values([[1, 2, 3], [4, 5, 6]], "INT32")
    assert t.shape == [2, 3]
    assert len(t.data) == 24
    assert t.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_tensor_bytes_are_little_endian_row_major():
    assert encode([1, 2], "INT16") == b"\x01\x00\x02\x00"
    assert encode([b"ab"], "BYTES") == b"\x02\x00\x00\x00ab"
    assert decode(b"\x00\x00\x80\x3f", "FP32") == [1.0]
    # BF16 keeps the upper half of the FP32 bits (round to nearest even).
    assert encode([1.0], "BF16") == b"\x80\x3f"


def test_tensor_rejects_ragged_lists_and_wrong_sizes():
    with pytest.raises(ValueError, match="rectangular"):
        Tensor.from_values([[1, 2], [3]], "FP32")
    with pytest.raises(ValueError, match="needs 8 bytes, got 4"):
        Tensor("FP32", [2], b"\x00" * 4)
    with pytest.raises(ValueError, match="shape"):
        Tensor.from_values([1, 2, 3], "FP32", shape=[2, 2])
    with pytest.raises(ValueError, match="do not fit INT8"):
        Tensor.from_values([300], "INT8")


def test_datatype_names_accept_other_libraries_spellings():
    assert datatype_name("fp32") == "FP32"
    assert datatype_name("float16") == "FP16"
    assert datatype_name("torch.bfloat16") == "BF16"
    assert datatype_name("int64") == "INT64"
    with pytest.raises(ValueError, match="datatype: 'complex64'"):
        datatype_name("complex64")


def test_priorities_accept_names_numbers_and_enum_members():
    class TaskPriority(enum.Enum):  # what MultiGPUManager callers pass
        HIGH = 1
        BACKGROUND = 4

    p = inferd_client.client._common.Priority
    assert convert.priority_value("high") == p.Value("PRIORITY_HIGH")
    assert convert.priority_value("PRIORITY_LOW") == p.Value("PRIORITY_LOW")
    assert convert.priority_value(TaskPriority.BACKGROUND) == p.Value("PRIORITY_BACKGROUND")
    assert convert.priority_value(None) == p.Value("PRIORITY_NORMAL")
    with pytest.raises(ValueError, match="priority: 'URGENT' is not one of"):
        convert.priority_value("URGENT")


# -- low-level Client against the daemon --------------------------------------

def test_health_is_serving_and_unknown_service_is_not_found(client):
    assert client.health() is True
    assert client.health("") is True
    assert client.server_live() and client.server_ready()
    with pytest.raises(InferdError) as e:
        client.health("no-such-service")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_models_are_listed_with_metadata(client):
    names = {m.name for m in client.list_models()}
    assert {"identity", "add", "scale"} <= names
    meta = client.model_metadata("add")
    assert [t.name for t in meta.inputs] == ["INPUT0", "INPUT1"]
    assert client.model_ready("add")
    assert client.server_metadata().name


def test_infer_add_returns_the_sum(client):
    out = client.infer("add", {"INPUT0": Tensor.from_values([1, 2], "FP32"),
                               "INPUT1": Tensor.from_values([3, 4], "FP32")})
    assert list(out) == ["OUTPUT0"]
    assert out["OUTPUT0"].datatype == "FP32"
    assert out["OUTPUT0"].values() == [4.0, 6.0]


# Verifies that plain lists take the datatype the model declares (FP32 for
# the builtins) and that positional inputs follow the model's input order.
def test_infer_takes_lists_in_model_input_order(client):
    out = client.infer("add", ([[1, 2], [3, 4]], [[10, 20], [30, 40]]))
    assert out["OUTPUT0"].shape == [2, 2]
    assert out["OUTPUT0"].tolist() == [[11.0, 22.0], [33.0, 44.0]]


def test_infer_passes_parameters_and_keeps_integer_types(client):
    out = client.infer("scale", {"INPUT0": Tensor.from_values([1, -2, 3], "INT32")},
                       parameters={"factor": 3.0})
    assert out["OUTPUT0"].datatype == "INT32"
    assert out["OUTPUT0"].values() == [3, -6, 9]


def test_infer_errors_carry_the_code_and_field(client):
    with pytest.raises(InferdError) as e:
        client.infer("add", {"INPUT0": Tensor.from_values([1.0], "FP32")})
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(InferdError) as e:
        client.infer("no_such_model", {"INPUT0": Tensor.from_values([1.0], "FP32")})
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert "no_such_model" in e.value.message


# Verifies that a tensor bigger than gRPC's 4 MiB default message limit goes
# up and comes back bit-identical through the chunked streams.
def test_upload_download_round_trip_is_bit_identical(client):
    payload = bytes(range(256)) * (6 * 4096 + 3)  # ~6 MiB, not a chunk multiple
    t = Tensor("UINT8", [len(payload)], payload)
    info = client.upload_tensor(t, device=1, chunk_bytes=1 << 20)
    try:
        assert info.device == 1 and info.byte_size == len(payload) and info.owner == "pytest"
        back = client.download_tensor(info.id, chunk_bytes=512 << 10)
        assert back.datatype == "UINT8" and back.shape == [len(payload)]
        assert back.data == payload
        listed = {x.id for x in client.list_tensors(owner="pytest", device=1)}
        assert info.id in listed
        short = client.renew_lease(info.id, 120).lease_expires_unix_ms
        long = client.renew_lease(info.id, 1200).lease_expires_unix_ms
        assert long - short >= 1000 * 1000  # 1080 s apart, minus the calls' time
        assert client.get_tensor(info.id).byte_size == len(payload)
    finally:
        client.free_tensor(info.id)
    with pytest.raises(InferdError) as e:
        client.get_tensor(info.id)
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_allocate_gives_zeroed_tensor_and_stats_count_it(client):
    info = client.allocate_tensor("FP32", [4, 4], device=0)
    try:
        assert client.download_tensor(info.id).values() == [0.0] * 16
        stats = {d.device: d for d in client.get_memory_stats().devices}
        assert stats[0].active_tensors >= 1
        assert client.get_optimal_batch_size(0, 1.0, [16], "FP32") >= 1
    finally:
        client.free_tensor(info.id)


def test_task_runs_and_returns_outputs(client):
    task_id = client.submit_task("add", {"INPUT0": [1.0, 2.0], "INPUT1": [3.0, 4.0]},
                                 priority="HIGH")
    resp = client.wait_task(task_id, timeout=30)
    assert resp.finished
    assert convert.enum_short_name(resp.task.DESCRIPTOR.fields_by_name["state"].enum_type,
                                   resp.task.state) == "SUCCEEDED"
    outputs = inferd_client.task_outputs(resp.task)
    assert outputs["OUTPUT0"].values() == [4.0, 6.0]
    assert client.get_task(task_id).task_id == task_id
    assert task_id in {t.task_id for t in client.list_tasks(owner="pytest")}
    with pytest.raises(InferdError) as e:
        client.cancel_task(task_id)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION


# Verifies chaining: the second task reads the first one's output by
# reference, and a stored tensor feeds a task by handle.
def test_tasks_chain_by_output_reference_and_tensor_handle(client):
    stored = client.upload_tensor(Tensor.from_values([1.0, 1.0], "FP32"), device=0)
    try:
        first = client.task_spec("add", {"INPUT0": stored.id, "INPUT1": [2.0, 3.0]}, key="first")
        second = client.task_spec("scale", {"INPUT0": TaskOutputRef("first", "OUTPUT0")},
                                  parameters={"factor": 10}, key="second")
        ids = client.submit_tasks([first, second])
        assert len(ids) == 2
        done = client.wait_task(ids[1], timeout=30)
        assert done.finished
        assert inferd_client.task_outputs(done.task)["OUTPUT0"].values() == [30.0, 40.0]
    finally:
        client.free_tensor(stored.id)


def test_watch_streams_a_tasks_state_changes(client):
    events = queue.Queue()
    stream = client.watch_tasks(model_name="identity")

    def pump():
        for ev in stream:
            events.put(ev)
        events.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        # The watch has no "registered" signal: run tasks until the first
        # event shows it is in place, then follow one task from its start.
        first = None
        for _ in range(100):
            client.wait_task(client.submit_task("identity", {"INPUT0": [1.0]}), timeout=30)
            try:
                first = events.get(timeout=0.5)
                break
            except queue.Empty:
                continue
        assert first is not None, "the watch never delivered an event"
        task_id = client.submit_task("identity", {"INPUT0": [2.0]})
        states = []
        while not states or states[-1] not in TERMINAL:
            ev = events.get(timeout=30)
            assert ev is not None, "the watch ended early"
            if ev.task_id == task_id:
                states.append(convert.enum_short_name(ev.DESCRIPTOR.fields_by_name[
                    "state"].enum_type, ev.state))
        assert states[-1] == "SUCCEEDED"
        assert states.count("SUCCEEDED") == 1
    finally:
        stream.cancel()
        reader.join(timeout=10)
    assert not reader.is_alive()


def test_transfer_copies_between_devices(client):
    src = client.upload_tensor(Tensor.from_values([1, 2, 3, 4], "INT32"), device=0)
    try:
        transfer_id = client.async_transfer(src.id, dst_device=1, priority="HIGH")
        t = client.wait_transfer(transfer_id, timeout=30)
        assert t.error_message == ""
        assert t.result.device == 1
        assert client.download_tensor(t.result.id).values() == [1, 2, 3, 4]
        assert client.get_transfer(transfer_id).transfer_id == transfer_id
        client.free_tensor(t.result.id)
        back = client.wait_transfer(client.async_transfer(src.id, to_host=True), timeout=30)
        assert decode(back.data, "INT32") == [1, 2, 3, 4]
        links = {l.link for l in client.get_communication_stats().links}
        assert "0->1" in links
    finally:
        client.free_tensor(src.id)


def test_all_reduce_sums_tensors_on_two_devices(client):
    a = client.upload_tensor(Tensor.from_values([1.0, 2.0], "FP32"), device=0)
    b = client.upload_tensor(Tensor.from_values([10.0, 20.0], "FP32"), device=1)
    try:
        resp = client.all_reduce([a.id, b.id], op="SUM")
        assert list(resp.devices) == [0, 1]
        assert client.download_tensor(a.id).values() == [11.0, 22.0]
        assert client.download_tensor(b.id).values() == [11.0, 22.0]
    finally:
        client.free_tensor(a.id)
        client.free_tensor(b.id)


def test_scaling_samples_policy_and_events(client):
    before = client.get_scaling_stats().counts.client_samples
    client.collect_workload_metrics(4, 0.02, 100.0)
    assert client.get_scaling_stats().counts.client_samples == before + 1
    with pytest.raises(InferdError) as e:
        client.collect_workload_metrics(-1, 0, 0)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "queue_length" in e.value.message
    policy = client.get_scaling_policy()
    assert client.set_scaling_policy(policy) == policy
    assert isinstance(client.get_scaling_events(limit=10), list)


def test_performance_report_covers_devices_and_memory(client):
    report = client.get_performance_report()
    assert [d.device for d in report.devices] == [0, 1]
    assert len(report.memory.devices) == 2


def test_unreachable_daemon_fails_with_unavailable_after_retries():
    with Client("127.0.0.1:1", timeout=2, max_attempts=2, initial_backoff=0.01) as c:
        with pytest.raises(InferdError) as e:
            c.health()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


# -- the facade -----------------------------------------------------------------

def test_facade_has_every_manager_method_and_the_manager_name():
    assert MultiGPUManager is InferdManager
    for name in MANAGER_METHODS:
        assert callable(getattr(InferdManager, name)), name


def test_facade_memory_methods_return_plain_values(manager):
    handle = manager.optimize_memory_allocation(0, 4096)
    try:
        assert handle["device"] == 0 and handle["byte_size"] == 4096
        assert isinstance(handle["tensor_id"], str) and len(handle["tensor_id"]) == 32
        stats = manager.get_memory_stats()
        assert set(stats) == {0, 1}
        assert stats[0]["active_tensors"] >= 1
        assert 0.0 <= stats[0]["fragmentation"] <= 1.0
        batch = manager.get_optimal_batch_size(0, 10.0, [3, 32, 32], "float32")
        assert isinstance(batch, int) and batch >= 1
    finally:
        manager.free_tensor(handle)


def test_facade_allocation_takes_the_dtype_names_get_optimal_batch_size_takes(manager):
    for dtype, expected in (("float32", "FP32"), ("float16", "FP16"), ("FP16", "FP16"),
                            ("int64", "INT64")):
        handle = manager.optimize_memory_allocation(0, [2, 2], dtype=dtype)
        try:
            assert handle["datatype"] == expected, dtype
        finally:
            manager.free_tensor(handle)
    try:
        import torch
    except ImportError:
        return
    handle = manager.optimize_memory_allocation(0, [3], dtype=torch.bfloat16)
    try:
        assert handle["datatype"] == "BF16"
    finally:
        manager.free_tensor(handle)


def test_facade_async_transfer_returns_a_future(manager):
    handle = manager.optimize_memory_allocation(0, [2, 2], dtype="FP32")
    try:
        future = manager.async_transfer(handle, 0, 1, priority="HIGH")
        assert str(future) == future.transfer_id
        result = future.result(timeout=30)
        assert result["state"] == "SUCCEEDED"
        assert result["link"] == "0->1" and result["priority"] == "HIGH"
        assert result["result"]["device"] == 1
        assert future.done()
        to_host = manager.async_transfer(result["tensor_id"], 1, -1).result(timeout=30)
        assert to_host["tensor"].tolist() == [[0.0, 0.0], [0.0, 0.0]]
        manager.free_tensor(result["tensor_id"])
        with pytest.raises(ValueError, match="src_device: tensor .* lives on device 0, not 1"):
            manager.async_transfer(handle, 1, 0)
        stats = manager.get_communication_stats()
        assert any(op["op"] == "transfer" and op["operations"] >= 1 for op in stats["ops"])
        assert isinstance(stats["chunk_bytes"], int)
    finally:
        manager.free_tensor(handle)


def test_facade_schedules_tasks_like_the_manager_api(manager):
    task_id = manager.schedule_inference_task("add", ([1.0, 2.0], [3.0, 4.0]), priority="CRITICAL",
                                              memory_requirement=1024)
    assert isinstance(task_id, str)
    task = manager.wait_task(task_id, timeout=30)
    assert task["state"] == "SUCCEEDED" and task["finished"] is True
    assert task["priority"] == "CRITICAL"
    assert task["outputs"] == {"OUTPUT0": [4.0, 6.0]}
    assert manager.get_task(task_id)["task_id"] == task_id
    with pytest.raises(TypeError, match="func"):
        manager.schedule_inference_task(len, ([1.0],))
    stats = manager.get_scheduler_stats()
    assert stats["submitted"] >= 1 and stats["succeeded"] >= 1
    assert {q["priority"] for q in stats["queues"]} == {"CRITICAL", "HIGH", "NORMAL", "LOW",
                                                          "BACKGROUND"}
    assert [d["device"] for d in stats["devices"]] == [0, 1]


def test_facade_scaling_and_report(manager):
    before = manager.get_scaling_stats()["counts"]["client_samples"]
    assert manager.collect_workload_metrics(2, 0.05, 40.0) is None
    stats = manager.get_scaling_stats()
    assert stats["counts"]["client_samples"] == before + 1
    assert stats["active_devices"] == [0, 1]
    assert isinstance(stats["policy"]["rules"], list)
    report = manager.get_performance_report()
    assert [d["kind"] for d in report["devices"]] == ["host", "host"]
    assert len(report["memory"]["devices"]) == 2
    assert report["scaling"]["enabled"] in (True, False)


def test_client_sends_its_bearer_token(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("py infer python-token-0123456789\n")
    config = tmp_path / "inferd.yaml"
    config.write_text('server:\n  auth:\n    tokens_file: "%s"\n' % tokens)
    d = Daemon(["--config=%s" % config, "--host-devices=1", "--grpc-listen=127.0.0.1:0",
                "--metrics-listen=127.0.0.1:0"])
    try:
        with Client(d.target, token="python-token-0123456789") as c:
            assert c.health()
            assert any(m.name == "add" for m in c.list_models())
        with Client(d.target, token="") as anonymous:
            with pytest.raises(InferdError) as e:
                anonymous.list_models()
            assert e.value.code_name == "UNAUTHENTICATED"
            assert "RepositoryIndex needs a bearer token with role infer" in e.value.message
    finally:
        d.stop()
