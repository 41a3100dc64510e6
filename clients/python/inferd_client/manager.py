"""InferdManager: the method names of the torch-inference framework's
MultiGPUManager, answered by the daemon.

Code written against that in-process manager moves to the daemon by
changing one constructor:

    manager = MultiGPUManager(config)                 # in-process
    manager = InferdManager("127.0.0.1:50051")        # inferd

Every method keeps MultiGPUManager's name and arguments and returns plain Python
values (dicts, lists, ints, strings): no protobuf types. Enum values are
short names ("HIGH", "SUCCEEDED"); times are Unix milliseconds; sizes are
bytes; durations are seconds. The shapes are given in each docstring.

The daemon owns the engines, so there is no manager-side state beyond the
connection. Safe to use from several threads. Failures raise InferdError
(.code_name, .message) as the low-level Client does.
"""

import grpc

from inferd_client import convert
from inferd_client.client import Client, DEFAULT_TARGET, InferdError, task_outputs
from inferd_client.tensors import Tensor, as_tensor

_TERMINAL_TRANSFER = ("SUCCEEDED", "FAILED")


def _tensor_dict(info):
    d = convert.message_to_dict(info)
    d["tensor_id"] = info.id
    return d


class TransferFuture(object):
    """What async_transfer returns: the transfer id plus result()/done(),
    like a concurrent.futures.Future. str(future) is the transfer id."""

    def __init__(self, client, transfer_id, source_meta=None):
        self._client = client
        self._source_meta = source_meta  # (datatype, shape) when known
        self.transfer_id = transfer_id

    def __str__(self):
        return self.transfer_id

    def __repr__(self):
        return "TransferFuture(%r)" % self.transfer_id

    def done(self):
        """True once the transfer SUCCEEDED or FAILED."""
        return self.status()["state"] in _TERMINAL_TRANSFER

    def status(self):
        """The transfer as a dict (see result()) without waiting."""
        return convert.message_to_dict(self._client.get_transfer(self.transfer_id))

    def result(self, timeout=None):
        """Waits up to `timeout` seconds (None: the client's timeout) and
        returns the transfer as a dict:
            {"transfer_id", "state": "SUCCEEDED", "src_device", "dst_device"
             (-1: the host), "link": "0->1", "link_kind": "PEER",
             "priority": "HIGH", "byte_size", "chunks",
             "bandwidth_bytes_per_second", "source_tensor_id",
             "tensor_id" and "result": {tensor dict} (device destinations),
             "data": bytes and "tensor": Tensor (copies to the host), ...}
        Raises InferdError with the failure's code when it FAILED, and
        TimeoutError when it has not finished in time."""
        t = self._client.wait_transfer(self.transfer_id, timeout)
        d = convert.message_to_dict(t)
        if d["state"] == "FAILED":
            raise InferdError(_status_code(t.error_code), t.error_message)
        if d["state"] != "SUCCEEDED":
            raise TimeoutError("transfer %s is still %s" % (self.transfer_id, d["state"]))
        if t.HasField("result") and t.result.id:
            d["result"] = _tensor_dict(t.result)
            d["tensor_id"] = t.result.id
        if d["dst_device"] == -1 and self._source_meta is not None:
            datatype, shape = self._source_meta
            d["tensor"] = Tensor(datatype, shape, t.data)
        return d


def _status_code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN


class InferdManager(object):
    """MultiGPUManager's methods, backed by an inferd daemon.

    target: the daemon's "host:port"; other keyword arguments go to Client
    (timeout, max_message_bytes, max_attempts, owner).
    """

    def __init__(self, target=DEFAULT_TARGET, **client_options):
        self.client = Client(target, **client_options)

    def close(self):
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- memory (inferd.v1.Memory) ----------------------------------------

    def optimize_memory_allocation(self, device_id, tensor_size, dtype="UINT8", lease_seconds=0.0):
        """Allocates a zeroed tensor on `device_id` from the daemon's pool
        (GC runs first when the device is past memory_gc_threshold).
        `tensor_size`: bytes (an int; a UINT8 tensor of that many bytes) or
        a shape (a list/tuple, of `dtype` elements). Returns the tensor as a
        dict: {"tensor_id", "id", "datatype", "shape", "device", "byte_size",
        "owner", "lease_expires_unix_ms", "pin_count", "created_unix_ms"}.
        RESOURCE_EXHAUSTED names the device, requested and free bytes."""
        if isinstance(tensor_size, (list, tuple)):
            info = self.client.allocate_tensor(dtype, list(tensor_size), device=device_id,
                                               lease_seconds=lease_seconds)
        else:
            info = self.client.allocate_tensor("UINT8", [int(tensor_size)], device=device_id,
                                               lease_seconds=lease_seconds)
        return _tensor_dict(info)

    def get_optimal_batch_size(self, device_id, model_size_mb, input_shape, dtype="FP32",
                               max_batch_size=0):
        """Returns the largest batch (an int) that fits `device_id`'s free
        memory with a model of `model_size_mb` and samples of `input_shape`
        (without the batch dim) and `dtype` ("FP32", "float16",
        torch.bfloat16, ...)."""
        return self.client.get_optimal_batch_size(device_id, model_size_mb, input_shape, dtype,
                                                  max_batch_size=max_batch_size)

    def get_memory_stats(self):
        """Returns {device_id: {"device", "total_bytes", "reserved_bytes",
        "allocated_bytes", "free_bytes", "largest_free_block_bytes",
        "fragmentation" (0..1), "overhead_ratio", "active_tensors",
        "tensor_bytes", "pinned_tensors", "segments", "allocations", "frees",
        "gc_runs", "gc_reclaimed_bytes", "compactions",
        "compaction_moved_bytes", "lease_expirations"}}."""
        stats = self.client.get_memory_stats()
        return {d.device: convert.message_to_dict(d) for d in stats.devices}

    def free_tensor(self, tensor):
        """Frees a tensor (a dict from optimize_memory_allocation, or its id)."""
        self.client.free_tensor(tensor if isinstance(tensor, str) else tensor["tensor_id"])

    # -- communication (inferd.v1.Communication) --------------------------

    def async_transfer(self, tensor, src_device, dst_device, priority="NORMAL"):
        """Queues a copy of `tensor` to `dst_device` and returns at once with
        a TransferFuture (str() is the transfer id; .result() waits and
        returns the transfer dict, whose "tensor_id" is the new tensor).
        `tensor`: a stored tensor (dict from optimize_memory_allocation, a
        handle string) — `src_device` must then be its device or None — or
        data (Tensor, nested list), sent from the host (src_device None or
        -1). `dst_device` -1 copies back to the caller (result()["tensor"]).
        `priority`: CRITICAL, HIGH, NORMAL, LOW, BACKGROUND (name, number or
        Enum member)."""
        stored = isinstance(tensor, str) or (isinstance(tensor, dict) and (
            "tensor_id" in tensor or "id" in tensor))
        to_host = dst_device is None or dst_device < 0
        meta = None
        if stored:
            tensor_id = tensor if isinstance(tensor, str) else (
                tensor.get("tensor_id") or tensor.get("id"))
            if src_device is not None or to_host:
                info = self.client.get_tensor(tensor_id)
                if src_device is not None and info.device != src_device:
                    raise ValueError("src_device: tensor %s lives on device %d, not %d" % (
                        tensor_id, info.device, src_device))
                meta = (info.datatype, list(info.shape))
            source = tensor_id
        else:
            if src_device not in (None, -1):
                raise ValueError("src_device: data given by value comes from the host (-1), "
                                 "not device %r; store it first with optimize_memory_allocation "
                                 "or Client.upload_tensor" % (src_device,))
            source = as_tensor(tensor)
            meta = (source.datatype, source.shape)
        transfer_id = self.client.async_transfer(source, dst_device=0 if to_host else dst_device,
                                                 to_host=to_host, priority=priority)
        return TransferFuture(self.client, transfer_id, meta)

    def get_communication_stats(self):
        """Returns {"links": [{"link": "0->1", "src_device", "dst_device",
        "kind": "PEER", "bytes", "transfers", "errors", "queued",
        "bandwidth_bytes_per_second", "peak_bytes_per_second",
        "limit_bytes_per_second"}], "ops": [{"op": "transfer", "operations",
        "bytes", "errors", "total_seconds"}], "queue_depth": [{"priority",
        "depth"}], "active_transfers", "calibration": [...],
        "calibration_measured", "nccl_enabled", "chunk_bytes",
        "overlap_threshold_bytes", "bandwidth_limit", "communicators", ...}."""
        return convert.message_to_dict(self.client.get_communication_stats())

    # -- scaling (inferd.v1.Scaling) --------------------------------------

    def collect_workload_metrics(self, queue_length, processing_time, throughput):
        """Adds a workload sample (tasks waiting, seconds per task, tasks per
        second) to the scaler's window. Returns None."""
        self.client.collect_workload_metrics(queue_length, processing_time, throughput)

    def get_scaling_stats(self):
        """Returns {"enabled", "active_devices": [int], "healthy_devices",
        "inactive_devices", "unhealthy_devices", "desired_replicas",
        "replica_demand", "last_decision": {event dict} or None,
        "last_scale_unix_ms", "last_evaluation_unix_ms",
        "window_length_seconds", "window": [{"metric": "QUEUE_LENGTH",
        "count", "mean", "min", "max", "p99", "stddev", "cv", ...}],
        "counts": {"evaluations", "device_activations", ...,
        "client_samples"}, "policy": {"enabled", "rules": [...], ...}}."""
        return convert.message_to_dict(self.client.get_scaling_stats())

    # -- scheduling (inferd.v1.Scheduler) ---------------------------------

    def schedule_inference_task(self, func, args, priority="NORMAL", memory_requirement=0,
                                **options):
        """Submits a task and returns its id (a string) at once.
        `func`: the model name ("add", "mlp_demo", ...). `args`: the inputs —
        a tuple/list in the model's input order or a dict {input name:
        value}; each value is data (nested list, Tensor, numpy array; lists
        take the model's declared datatype), a stored tensor (dict from
        optimize_memory_allocation or a handle string), or
        TaskOutputRef(task_id, output) to chain tasks. `priority`:
        CRITICAL, HIGH, NORMAL, LOW, BACKGROUND. `memory_requirement`: bytes.
        `options`: any other Client.task_spec argument (depends_on, device,
        timeout_seconds, max_retries, keep_outputs_on_device, parameters)."""
        if not isinstance(func, str):
            raise TypeError("func: the daemon runs models by name; pass the model name as a "
                            "string, not %s" % type(func).__name__)
        if not isinstance(args, (list, tuple, dict)):
            args = (args,)
        return self.client.submit_task(func, args, priority=priority,
                                       memory_requirement_bytes=memory_requirement, **options)

    def wait_task(self, task_id, timeout=None):
        """Waits up to `timeout` seconds for the task and returns it as a
        dict: {"task_id", "model_name", "state": "SUCCEEDED", "finished":
        bool, "priority", "device", "attempts", "queue_seconds",
        "execution_seconds", "status_code", "status_message",
        "outputs": {name: nested list | tensor id (kept on device)}, ...}."""
        resp = self.client.wait_task(task_id, timeout)
        return self._task_dict(resp.task, finished=resp.finished)

    def get_task(self, task_id):
        """The task as a dict (as wait_task), without waiting."""
        task = self.client.get_task(task_id)
        return self._task_dict(task, finished=None)

    def cancel_task(self, task_id):
        """Cancels a task that has not finished; returns its dict."""
        return self._task_dict(self.client.cancel_task(task_id), finished=None)

    @staticmethod
    def _task_dict(task, finished):
        d = convert.message_to_dict(task)
        d["outputs"] = {k: (v.tolist() if isinstance(v, Tensor) else v)
                        for k, v in task_outputs(task).items()}
        if finished is not None:
            d["finished"] = finished
        return d

    def get_scheduler_stats(self):
        """Returns {"strategy": "balanced", "queues": [{"priority": "HIGH",
        "queued"}], "queued", "running", "waiting_deps", "pending_batch",
        "submitted", "succeeded", "failed", "cancelled", "timed_out",
        "rejected", "retries", "batches", "batched_requests",
        "tasks_retained", "mean_queue_seconds", "mean_execution_seconds",
        "devices": [{"device", "active", "healthy", "queued", "running",
        "consecutive_failures", "completed", "failures",
        "reserved_bytes"}]}."""
        return convert.message_to_dict(self.client.get_scheduler_stats())

    # -- the whole picture --------------------------------------------------

    def get_performance_report(self):
        """Returns {"generated_unix_ms", "version", "devices": [{"device",
        "kind": "cuda"|"host", "name", "memory_total_bytes",
        "memory_free_bytes", "utilization" (0..1, -1 n/a), "healthy",
        "active", "fault_events": [str]}], "memory": {"devices": [memory
        stats dicts]}, "scaling": {as get_scaling_stats}, "communication":
        {as get_communication_stats}} plus whatever sections the daemon's
        report adds (each as a dict; None when the daemon leaves it out)."""
        return convert.message_to_dict(self.client.get_performance_report())


# The framework's class name, so `from inferd_client import MultiGPUManager` works too.
MultiGPUManager = InferdManager
